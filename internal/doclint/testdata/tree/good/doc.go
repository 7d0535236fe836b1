// Package good is documented as the rules ask.
package good
