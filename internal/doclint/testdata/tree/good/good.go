package good

// T is documented.
type T struct{}

// M is documented.
func (T) M() {}

func (t *T) unexported() {}

type hidden struct{}

func (hidden) Exported() {}

// G is a generic type.
type G[K comparable, V any] struct{}

// Get is documented.
func (*G[K, V]) Get() {}

// Grouped constants share this comment.
const (
	A = iota
	B
)

var (
	X = 1 // X has a line comment.
	// Y has its own comment.
	Y = 2
)

// Single has the declaration's comment.
var Single = 3

type (
	// U is documented inside a group.
	U int
)

// V is the only type of its group, so the group's comment is its comment.
type (
	V int
)

//go:generate echo this directive is not a doc comment, but F has one

// F is documented.
func F() {}
