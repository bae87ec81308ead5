package catalog

import (
	"net/http"
	"strings"
)

// maxTransactionTables bounds the tables of one multi-table commit.
const maxTransactionTables = 100

// commitTransaction serves POST /v1/transactions/commit: changes to several
// tables that are committed all together or not at all. Every requirement of
// every table is checked and every metadata pointer moves in one database
// transaction; if any table conflicts, none changes (409).
func (s *Server) commitTransaction(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		TableChanges []commitTableRequest `json:"table-changes"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if len(req.TableChanges) == 0 {
		return badRequestf("table-changes must name at least one table")
	}
	if len(req.TableChanges) > maxTransactionTables {
		return badRequestf("a transaction may change at most %d tables", maxTransactionTables)
	}
	changes := make([]tableChange, len(req.TableChanges))
	seen := map[string]bool{}
	for i, tc := range req.TableChanges {
		if tc.Identifier == nil {
			return badRequestf("table-changes[%d] has no identifier", i)
		}
		ident, err := tc.Identifier.tableIdent()
		if err != nil {
			return err
		}
		if seen[identKey(ident)] {
			return badRequestf("table %s appears more than once in the transaction", strings.Join(ident, "."))
		}
		seen[identKey(ident)] = true
		changes[i] = tableChange{ident: ident, reqs: tc.Requirements, updates: tc.Updates}
	}
	if _, err := s.commit(r.Context(), changes); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
