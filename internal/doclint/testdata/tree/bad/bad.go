package bad

// Documented is documented.
type Documented struct{}

// Its methods are not all.
var _ = 0

type Undocumented int

//go:noinline
func (Documented) Undocumented() {}

// Ptr has its comment separated by a blank line, so it has none.

func (*Documented) Ptr() {}

func Undocumented2() {}

const Loose = 1

// This comment is not the block's: a blank line follows it.

var (
	// A is documented.
	A = 1
	B = 2 // B has a line comment.

	C, D = 3, 4
)

type (
	Grouped int
	// Other is documented.
	Other int
)
