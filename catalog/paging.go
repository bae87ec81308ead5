package catalog

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strconv"
)

// maxPageSize caps pageSize so one listing request stays cheap to answer.
const maxPageSize = 1000

// pageRequest is a decoded pageToken/pageSize pair. The token is the sort key
// of the last item of the previous page, so paging stays correct while items
// are created or dropped between requests.
type pageRequest struct {
	size  int    // 0: no paging asked for, return everything
	after string // sort key the page starts after; "" starts at the beginning
}

func parsePageRequest(q url.Values) (pageRequest, error) {
	var p pageRequest
	if raw := q.Get("pageSize"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return p, badRequestf("pageSize %q must be a positive integer", raw)
		}
		p.size = min(n, maxPageSize)
	}
	if raw := q.Get("pageToken"); raw != "" {
		after, err := base64.RawURLEncoding.DecodeString(raw)
		if err != nil || len(after) == 0 {
			return p, badRequestf("pageToken %q is not a token this catalog issued", raw)
		}
		p.after = string(after)
	}
	return p, nil
}

// paginate sorts items by key and returns one page plus the token of the next
// page ("" when this page is the last).
func paginate[T any](items []T, key func(T) string, p pageRequest) (page []T, next string) {
	sort.Slice(items, func(i, j int) bool { return key(items[i]) < key(items[j]) })
	start := 0
	if p.after != "" {
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > p.after })
	}
	page = items[start:]
	if p.size > 0 && len(page) > p.size {
		page = page[:p.size]
		next = base64.RawURLEncoding.EncodeToString([]byte(key(page[len(page)-1])))
	}
	return page, next
}
