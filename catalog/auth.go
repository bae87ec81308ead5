package catalog

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// tokenTTL is the lifetime of an issued access token.
const tokenTTL = time.Hour

// authenticator implements the OAuth2 client-credentials flow of
// POST /v1/oauth/tokens for one configured client. Tokens are stateless:
// an expiry signed with a key derived from the client secret. They survive a
// server restart, work across replicas sharing the secret, and die with a
// secret rotation.
type authenticator struct {
	clientID string
	secret   []byte
	key      []byte
	now      func() time.Time
}

func newAuthenticator(clientID, secret string) *authenticator {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("floe-catalog-token\x00" + clientID))
	return &authenticator{clientID: clientID, secret: []byte(secret), key: mac.Sum(nil), now: time.Now}
}

func (a *authenticator) checkClient(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(a.clientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(secret), a.secret) == 1
	return idOK && secretOK
}

// issue returns a token valid until now+tokenTTL.
func (a *authenticator) issue() string {
	exp := strconv.FormatInt(a.now().Add(tokenTTL).Unix(), 10)
	return "floe1." + exp + "." + a.sign(exp)
}

func (a *authenticator) sign(exp string) string {
	mac := hmac.New(sha256.New, a.key)
	mac.Write([]byte(exp))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// verify reports whether token is one of ours and unexpired.
func (a *authenticator) verify(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "floe1" {
		return fmt.Errorf("malformed bearer token")
	}
	if !hmac.Equal([]byte(parts[2]), []byte(a.sign(parts[1]))) {
		return fmt.Errorf("bearer token was not issued by this catalog")
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || a.now().Unix() >= exp {
		return fmt.Errorf("bearer token has expired")
	}
	return nil
}

// oauthError is the spec's OAuthError; the token endpoint answers with it
// rather than the ErrorModel, as OAuth2 clients expect.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

type oauthToken struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in"`
	IssuedTokenType string `json:"issued_token_type"`
}

// issueToken serves POST /v1/oauth/tokens: client credentials (in the form
// body or HTTP Basic auth) for a bearer token, and the token-exchange grant a
// client uses to refresh a token it still holds. With auth off it hands out a
// token to anyone, so clients configured with credentials work unchanged.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "request body is not a form: " + err.Error()})
		return
	}
	a := s.auth
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "client_credentials":
		id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		if bid, bsecret, ok := r.BasicAuth(); ok && id == "" && secret == "" {
			id, secret = bid, bsecret
		}
		if a != nil && !a.checkClient(id, secret) {
			writeJSON(w, http.StatusUnauthorized, oauthError{Error: "invalid_client", Description: "unknown client id or wrong secret"})
			return
		}
	case "urn:ietf:params:oauth:grant-type:token-exchange":
		if a != nil {
			if err := a.verify(r.PostForm.Get("subject_token")); err != nil {
				writeJSON(w, http.StatusUnauthorized, oauthError{Error: "invalid_client", Description: err.Error()})
				return
			}
		}
	case "":
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "grant_type is required"})
		return
	default:
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "unsupported_grant_type", Description: fmt.Sprintf("grant_type %q is not supported", grant)})
		return
	}
	token := "floe-open-catalog"
	if a != nil {
		token = a.issue()
	}
	writeJSON(w, http.StatusOK, oauthToken{
		AccessToken:     token,
		TokenType:       "bearer",
		ExpiresIn:       int(tokenTTL / time.Second),
		IssuedTokenType: "urn:ietf:params:oauth:token-type:access_token",
	})
}

// requireAuth demands a valid bearer token on every route but the token
// endpoint when auth is on.
func (s *Server) requireAuth(next http.Handler) http.Handler {
	if s.auth == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/oauth/tokens" {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="floe-catalog"`)
			writeErrorStatus(w, r, http.StatusUnauthorized, "NotAuthorizedException", "a bearer token is required: get one from POST /v1/oauth/tokens")
			return
		}
		if err := s.auth.verify(strings.TrimSpace(token)); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="floe-catalog", error="invalid_token"`)
			writeErrorStatus(w, r, http.StatusUnauthorized, "NotAuthorizedException", err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}
