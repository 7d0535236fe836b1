// Package nodoc has its overview in the wrong file.
package nodoc
