// Package backup writes and restores a whole Talos home as one tar.gz.
//
// An archive holds the parts of a home — config, keys, data (a consistent
// snapshot of the SQLite store taken with VACUUM INTO, or a pg_dump of the
// PostgreSQL database; the embedded vector store, or an export of the Chroma
// collection when the memories live there (VectorExport); the dream state),
// logs and skills — and, last, MANIFEST.json: the format version, the Talos version,
// the parts, and every file's path, size, mode and SHA-256.
//
// Restore verifies before it writes: the whole archive is read into a
// staging folder inside the target, every file checked against the
// manifest (and nothing unlisted accepted), and only then moved into place
// file by file. Entries that would land outside the target (absolute paths,
// "..", symbolic and hard links, devices) are refused, key files get mode
// 0600, and an archive from a newer format is refused. A truncated or
// tampered archive is refused before anything in the home changes.
// A VectorExport is imported into the configured store only after that,
// or kept in data/ and reported pending when there is none.
package backup
