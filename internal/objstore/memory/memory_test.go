package memory_test

import (
	"testing"

	"github.com/floe-io/floe/internal/objstore/memory"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
)

func TestAcceptance(t *testing.T) {
	objstoretest.AcceptanceTest(t, memory.New())
}
