// Package dream runs Talos's nightly maintenance cycle.
package dream
