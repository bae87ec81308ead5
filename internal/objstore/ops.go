package objstore

// Op names a Bucket operation, as used in metric labels and fault rules.
type Op string

// The Bucket operations.
const (
	OpUpload     Op = "upload"
	OpGet        Op = "get"
	OpGetRange   Op = "get_range"
	OpAttributes Op = "attributes"
	OpDelete     Op = "delete"
	OpIter       Op = "iter"
)

// Ops lists every Op.
var Ops = []Op{OpUpload, OpGet, OpGetRange, OpAttributes, OpDelete, OpIter}
