package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/backup"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/rag"
	ragsql "github.com/talos-ironclad/talos/rag/sqlstore"
)

// Exit codes of `talos backup` and `talos restore`.
const (
	exitBackupFailed  = 1 // the archive could not be written, or was refused
	exitBackupBadArgs = 2 // bad arguments or configuration
	exitRestoreNo     = 3 // the operator did not confirm
)

func newBackupCmd() *cobra.Command {
	var output, collection string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write the whole home (config, keys, a database snapshot, memories, logs, skills) to a tar.gz",
		Long: `Write a backup of TALOS_HOME: config, keys, a consistent snapshot of the
relational store (SQLite's VACUUM INTO, or pg_dump for PostgreSQL), the
embedded vector store (or, with TALOS_CHROMA_URL, an export of the Chroma
collection in data/chroma-export.jsonl), the audit logs and the skills tree,
with a manifest of
every file's size, mode and SHA-256. The archive is written 0600 under a
temporary name and renamed, so a crash never leaves half an archive behind.
It holds the keys: keep it as safe as the home.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return withExit(exitBackupBadArgs, err)
			}
			if output == "" {
				output = filepath.Join(cfg.Home, layout.Backups, backup.ArchiveName(time.Now()))
			}
			start := time.Now()
			m, size, where, err := host.WriteBackup(cmd.Context(), cfg, output, collection, currentBuild().Version)
			if err != nil {
				return withExit(exitBackupFailed, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup %s: %d files, %d bytes, database %s, in %s\n", output, len(m.Files), size, m.Database, time.Since(start).Round(time.Millisecond))
			if where != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "memories: %d exported from %s into %s\n", m.VectorRecords, where, backup.VectorExport)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "archive to write (default TALOS_HOME/backups/talos-<time>.tar.gz)")
	cmd.Flags().StringVar(&collection, "collection", ragsql.DefaultCollection, "memory collection to export when the memories are on Chroma (TALOS_CHROMA_URL)")
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var dryRun, verifyOnly, yes bool
	var partial, collection string
	cmd := &cobra.Command{
		Use:   "restore ARCHIVE",
		Short: "Restore a backup into TALOS_HOME, after verifying every file",
		Long: `Restore a backup made by ` + "`talos backup`" + `. The whole archive is verified first —
every file against the manifest, nothing unlisted, no path outside the home,
no links, not a newer format — and only then are files moved into place.
Stop the daemon first. An export of a Chroma collection (data/chroma-export.jsonl)
is restored into data/ and then upserted into the collection of the restored
home's TALOS_CHROMA_URL; without one it stays in data/ to import later.

  --verify-only   check the archive and change nothing (no home needed)
  --dry-run       verify and list what would be written into the home
  --partial=LIST  restore only some of config,keys,data,logs,skills
  --yes           do not ask; otherwise type exactly "yes" to go on`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var parts []string
			if partial != "" {
				parts = strings.Split(partial, ",")
			}
			f, err := os.Open(args[0])
			if err != nil {
				return withExit(exitBackupBadArgs, err)
			}
			defer f.Close()
			if verifyOnly {
				staging, err := os.MkdirTemp("", "talos-verify-")
				if err != nil {
					return withExit(exitBackupFailed, err)
				}
				defer os.RemoveAll(staging)
				m, err := backup.Read(f, staging)
				if err != nil {
					return withExit(exitBackupFailed, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s verified: format %d, Talos %s, made %s, %d files, database %s\n",
					args[0], m.Format, m.TalosVersion, m.Created.Format(time.RFC3339), len(m.Files), m.Database)
				return nil
			}
			// The home only, not the configuration: restoring is how a
			// broken or lost configuration comes back.
			home, err := resolveHome(cmd)
			if err != nil {
				return withExit(exitBackupBadArgs, err)
			}
			plan, err := backup.Restore(cmd.Context(), f, backup.RestoreOptions{Home: home, Parts: parts, DryRun: true})
			if err != nil {
				return withExit(exitBackupFailed, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s verified: %d files to restore into %s, %d of them replacing files there\n", args[0], len(plan.Files), home, plan.Replaced)
			if dryRun {
				for _, fl := range plan.Files {
					fmt.Fprintf(cmd.OutOrStdout(), "  %s (%d bytes)\n", fl.Path, fl.Size)
					if fl.Path == backup.VectorExport {
						fmt.Fprintf(cmd.OutOrStdout(), "    %d memories exported from Chroma, to import into the collection %s of TALOS_CHROMA_URL\n", plan.Manifest.VectorRecords, collection)
					}
				}
				return nil
			}
			if !yes {
				fmt.Fprint(cmd.OutOrStdout(), `type "yes" to restore: `)
				line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimRight(line, "\r\n") != "yes" {
					return withExit(exitRestoreNo, errors.New("not restored: the answer was not \"yes\""))
				}
			}
			if _, err := f.Seek(0, 0); err != nil {
				return withExit(exitBackupFailed, err)
			}
			// The memory store is chosen after the files are in place: a
			// restored configuration says where the memories live.
			openVectors := func(ctx context.Context) (rag.Store, func() error, error) {
				cfg, err := loadConfig(cmd, nil)
				if err != nil {
					return nil, nil, err
				}
				mem, err := host.OpenBackupMemory(ctx, cfg, host.MemoryOptions{Collection: collection})
				if err != nil || mem == nil {
					return nil, nil, err
				}
				return mem.Store, mem.Close, nil
			}
			plan, err = backup.Restore(cmd.Context(), f, backup.RestoreOptions{Home: home, Parts: parts, Vectors: openVectors})
			later := fmt.Sprintf("set TALOS_CHROMA_URL and run `talos memory restore --collection %s --archive %s --overwrite` (or restore again with --partial=data)",
				collection, filepath.Join(home, filepath.FromSlash(backup.VectorExport)))
			if err != nil {
				if plan != nil && plan.VectorsPending {
					fmt.Fprintf(cmd.ErrOrStderr(), "the files are restored, but the memories exported from Chroma were not imported; they are in %s: fix the problem below, then %s\n", backup.VectorExport, later)
				}
				return withExit(exitBackupFailed, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %d files into %s\n", len(plan.Files), home)
			switch {
			case plan.VectorsPending:
				fmt.Fprintf(cmd.OutOrStdout(), "memories: %d exported from Chroma were NOT imported: this home has no TALOS_CHROMA_URL; they are kept in %s; to import them later, %s\n",
					plan.Manifest.VectorRecords, backup.VectorExport, later)
			case slices.ContainsFunc(plan.Files, func(f backup.File) bool { return f.Path == backup.VectorExport }):
				fmt.Fprintf(cmd.OutOrStdout(), "memories: %d imported into the Chroma collection %s\n", plan.VectorsImported, collection)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "verify and show what would be restored")
	cmd.Flags().BoolVar(&verifyOnly, "verify-only", false, "verify the archive only")
	cmd.Flags().BoolVar(&yes, "yes", false, "restore without asking")
	cmd.Flags().StringVar(&partial, "partial", "", "comma-separated parts: config,keys,data,logs,skills")
	cmd.Flags().StringVar(&collection, "collection", ragsql.DefaultCollection, "memory collection to import a Chroma export into (TALOS_CHROMA_URL)")
	return cmd
}
