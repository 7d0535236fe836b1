// Package ragtest helps test code that uses package rag: an in-memory
// rag.Store (MemoryStore), and the conformance suites every Store and
// History implementation must pass (RunStore, RunHistory).
//
// An adapter's test runs the suite against fresh instances:
//
//	func TestConformance(t *testing.T) {
//		ragtest.RunStore(t, func(t *testing.T, dim int) rag.Store {
//			s, err := mystore.Open(mystore.Config{Dimension: dim})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
package ragtest
