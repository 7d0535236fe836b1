package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chromem"
	"github.com/talos-ironclad/talos/rag/hashembed"
	ragsql "github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
)

// memoryArchiveFile is the prune archive, beside the embedded store.
const memoryArchiveFile = host.MemoryArchiveFile

// memorySQLiteFile is the relational store the memories live in by
// default, relative to the home: the daemon's embedded SQLite file.
const memorySQLiteFile = host.EmbeddedSQLiteFile

// memoryOpts are the flags every memory subcommand shares.
type memoryOpts struct {
	storeDir   string
	dbPath     string
	archive    string
	collection string
	dimension  int
	ceiling    int // 0: CHROMADB_MAX_VECTORS
	jsonOut    bool
}

// memoryEnv is an opened store (a Chroma server, the relational store or
// the embedded chromem-go store) with its embedder and pruner.
type memoryEnv struct {
	store   rag.Store
	db      *sqldb.DB // the relational store, when the memories live there
	where   string    // the store, as printed by stats
	emb     *hashembed.Embedder
	pruner  *prune.Pruner
	ret     *rag.Retriever
	ceiling int
	opts    memoryOpts
}

func (e *memoryEnv) close() {
	_ = e.store.Close()
	if e.db != nil {
		_ = e.db.Close()
	}
}

// memoryUses returns whether a configuration problem about a variable
// concerns the memory commands under cfg: the variables they read, and the
// two files as a whole. PostgreSQL's count only when the memories live in
// the relational store (no TALOS_CHROMA_URL, TALOS_MEMORY_STORE sql).
func memoryUses(cfg *config.Config) func(v string) bool {
	inSQL := cfg == nil || (cfg.ChromaURL == "" && cfg.MemoryStore != config.MemoryStoreChromem)
	return func(v string) bool {
		switch v {
		case "TALOS_CHROMA_URL", "TALOS_MEMORY_STORE", "CHROMADB_MAX_VECTORS", "CHROMADB_MAX_DIMENSIONS", config.ConfigFileName, config.EnvFileName:
			return true
		case "TALOS_POSTGRES_URL", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB":
			return inSQL
		}
		return false
	}
}

// memoryConfig loads the configuration like the daemon does. Problems with
// variables the memory commands do not read (a home never initialised has
// no BASIC_AUTH_PASS) do not stop them; problems with the ones they read are
// printed like `talos config validate` and exit 2.
func memoryConfig(cmd *cobra.Command) (*config.Config, error) {
	cfg, err := loadConfig(cmd, nil)
	var ve *config.ValidationError
	if err != nil && !errors.As(err, &ve) {
		return nil, withExit(2, err)
	}
	if ve != nil {
		if mine := reportProblems(cmd.ErrOrStderr(), ve, memoryUses(cfg)); len(mine) > 0 {
			return nil, withExit(2, fmt.Errorf("configuration in %s is invalid for talos memory: %d problem(s)", cfg.Home, len(mine)))
		}
	}
	return cfg, nil
}

// open opens the store the daemon would use: the Chroma server of
// TALOS_CHROMA_URL when it is set; else, with TALOS_MEMORY_STORE sql (the
// default), the relational store (the SQLite file <home>/data/talos.db or
// --db, or PostgreSQL when TALOS_POSTGRES_URL is set); with chromem, the
// embedded chromem-go store under the home (or --store-dir). The ceiling
// is --ceiling when given, else CHROMADB_MAX_VECTORS; the embedding
// dimension (--dimension) may not exceed CHROMADB_MAX_DIMENSIONS.
func (o *memoryOpts) open(cmd *cobra.Command, threshold float64) (*memoryEnv, error) {
	cfg, err := memoryConfig(cmd)
	if err != nil {
		return nil, err
	}
	if o.archive == "" {
		o.archive = filepath.Join(cfg.Home, memoryArchiveFile)
	}
	ceiling := cfg.ChromaMaxVectors
	if o.ceiling != 0 {
		ceiling = o.ceiling
	}
	if o.dimension > cfg.ChromaMaxDimensions {
		return nil, withExit(2, fmt.Errorf("--dimension %d is above CHROMADB_MAX_DIMENSIONS %d; use at most %d or raise CHROMADB_MAX_DIMENSIONS (384-4096)", o.dimension, cfg.ChromaMaxDimensions, cfg.ChromaMaxDimensions))
	}
	emb, err := hashembed.New(hashembed.Config{Dimension: o.dimension})
	if err != nil {
		return nil, withExit(2, err)
	}
	// The flags only move the embedded stores; which store is used is the
	// composition root's choice (host.OpenMemory), as in the daemon.
	flags := cmd.Flags()
	switch {
	case cfg.ChromaURL != "":
		if flags.Changed("store-dir") || flags.Changed("db") {
			return nil, withExit(2, fmt.Errorf("--store-dir and --db are for the embedded stores, but TALOS_CHROMA_URL is set (%s); unset it to use an embedded store", redact.URL(cfg.ChromaURL)))
		}
	case cfg.MemoryStore == config.MemoryStoreChromem:
		if flags.Changed("db") {
			return nil, withExit(2, errors.New("--db is for the relational store, but TALOS_MEMORY_STORE is chromem; use --store-dir"))
		}
	default:
		if flags.Changed("store-dir") {
			return nil, withExit(2, errors.New("--store-dir is for the chromem store (TALOS_MEMORY_STORE=chromem), but memories live in the relational store; use --db"))
		}
		if cfg.PostgresURL != "" && o.dbPath != "" {
			return nil, withExit(2, fmt.Errorf("--db is the embedded SQLite file, but TALOS_POSTGRES_URL is set (%s); unset it to use the SQLite file", redact.URL(cfg.PostgresURL)))
		}
	}
	m, err := host.OpenMemory(cmd.Context(), cfg, host.MemoryOptions{Collection: o.collection, Dimension: emb.Dimension(), StoreDir: o.storeDir, DBPath: o.dbPath})
	if err != nil {
		return nil, err
	}
	store, db, where := m.Store, m.DB, m.Where
	env := &memoryEnv{store: store, db: db, where: where, emb: emb, ceiling: ceiling, opts: *o}
	if err := rag.CheckDimension(cmd.Context(), store, emb); err != nil {
		env.close()
		return nil, err
	}
	if env.pruner, err = prune.New(prune.Config{Ceiling: ceiling, ArchivePath: o.archive}, store); err != nil {
		env.close()
		return nil, withExit(2, err)
	}
	if env.ret, err = rag.NewRetriever(rag.RetrieverConfig{Capacity: ceiling, Threshold: threshold}, store, emb, nil, env.pruner); err != nil {
		env.close()
		return nil, withExit(2, err)
	}
	return env, nil
}

func newMemoryCmd() *cobra.Command {
	o := &memoryOpts{}
	cmd := &cobra.Command{
		Use:   "memory",
		Short: "Add, search, inspect, prune and restore long-term memories",
		Long: `Long-term memory on the store the daemon uses: the Chroma server of TALOS_CHROMA_URL when
it is set; else, by default (TALOS_MEMORY_STORE=sql), the relational store: the SQLite file
<home>/data/talos.db (or --db), or PostgreSQL when TALOS_POSTGRES_URL is set; with
TALOS_MEMORY_STORE=chromem, the embedded chromem-go store under <home>/data/chromadb. Texts are
embedded offline with hashembed (lexical, not semantic); search also finds memories sharing the
query's words (on the relational store), and its threshold is hashembed's (0.35).

A memory holds at most 16 KiB of UTF-8 text (from the arguments, --file, or stdin with --file -);
--trusted is only for sources user and model; --created may not be in the future. Memories are
printed with control characters escaped.

Pruning keeps the store under its ceiling (CHROMADB_MAX_VECTORS, or --ceiling): above 90% it
deletes the lowest-scoring memories down to 80%, never a permanent one or one younger than its
priority's guarantee, and archives every pruned memory first so 'memory restore' can bring it back.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.storeDir, "store-dir", "", "directory of the chromem store, with TALOS_MEMORY_STORE=chromem (default <home>/data/chromadb)")
	pf.StringVar(&o.dbPath, "db", "", "SQLite file of the relational store, with TALOS_MEMORY_STORE=sql (default <home>/"+memorySQLiteFile+")")
	pf.StringVar(&o.archive, "archive", "", "prune archive, JSON lines (default <home>/"+memoryArchiveFile+")")
	pf.StringVar(&o.collection, "collection", chromem.DefaultCollection, "collection name")
	pf.IntVar(&o.dimension, "dimension", hashembed.DefaultDimension, "embedding dimension of the store (at most CHROMADB_MAX_DIMENSIONS)")
	pf.IntVar(&o.ceiling, "ceiling", 0, "maximum number of memories (default CHROMADB_MAX_VECTORS, itself 100000 by default)")
	pf.BoolVar(&o.jsonOut, "json", false, "print JSON")
	cmd.AddCommand(newMemoryAddCmd(o), newMemorySearchCmd(o), newMemoryStatsCmd(o), newMemoryPruneCmd(o), newMemoryRestoreCmd(o))
	return cmd
}

// printJSON prints v as indented JSON. encoding/json escapes the C0
// control characters; the C1 ones and the bidirectional overrides, which
// a terminal may also act on, are escaped here (\uXXXX: the same JSON).
func printJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	var b strings.Builder
	for _, r := range buf.String() {
		if (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Bidi_Control, r) {
			fmt.Fprintf(&b, `\u%04x`, r)
		} else {
			b.WriteRune(r)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newMemoryAddCmd(o *memoryOpts) *cobra.Command {
	var id, priority, source, typ, session, created, file string
	var trusted bool
	cmd := &cobra.Command{
		Use:   "add [flags] TEXT... | add --file PATH|-",
		Short: "Store a memory (text from the arguments, a file or stdin; at most 16 KiB)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Every problem with the input is reported at once.
			var problems []error
			p, err := rag.ParsePriority(priority)
			if err != nil {
				problems = append(problems, fmt.Errorf("--priority: %w", err))
			}
			src, err := rag.ParseSource(source)
			if err != nil {
				problems = append(problems, fmt.Errorf("--source: %w", err))
			}
			var at time.Time
			if created != "" {
				if at, err = time.Parse(time.RFC3339, created); err != nil {
					problems = append(problems, fmt.Errorf("--created %s: want an RFC 3339 time such as 2026-01-02T15:04:05Z", rag.ClipText(created, 40)))
				}
			}
			text, err := memoryText(cmd.InOrStdin(), args, file)
			if err != nil {
				problems = append(problems, err)
			} else if err := rag.CheckNewMemory(text, rag.Memory{Source: src, Trusted: trusted, CreatedAt: at}, time.Now()); err != nil {
				problems = append(problems, err)
			}
			if len(problems) > 0 {
				return withExit(2, talos.E(talos.CodeInputInvalid, "talos memory add", "nothing was stored", errors.Join(problems...)))
			}
			env, err := o.open(cmd, 0)
			if err != nil {
				return err
			}
			defer env.close()
			got, err := env.ret.Remember(cmd.Context(), id, text, rag.Memory{Priority: p, Source: src, Trusted: trusted, Type: typ, SessionID: session, CreatedAt: at})
			if errors.Is(err, talos.ErrInputInvalid) {
				return withExit(2, err)
			}
			if err != nil {
				return err
			}
			if o.jsonOut {
				return printJSON(cmd.OutOrStdout(), map[string]string{"id": got})
			}
			fmt.Fprintln(cmd.OutOrStdout(), termText(got))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "id", "", "memory id (default: a random one; an existing id is replaced)")
	f.StringVar(&priority, "priority", string(rag.PriorityAuto), "permanent, high, session, normal, temporary or auto")
	f.StringVar(&source, "source", string(rag.SourceUser), "user, model, tool, web or skill")
	f.BoolVar(&trusted, "trusted", false, "the memory may be used as instructions (only for sources user and model: what a person or Talos wrote)")
	f.StringVar(&typ, "type", rag.DefaultType, "memory type")
	f.StringVar(&session, "session", "", "session id")
	f.StringVar(&created, "created", "", "creation time, RFC 3339, not in the future (default now; for imports)")
	f.StringVar(&file, "file", "", "read the text from this file, or from stdin with -, instead of the arguments")
	return cmd
}

// memoryText is the text of `memory add`: the arguments joined by spaces,
// or the content of --file (stdin for -), without its final line break.
// Reading stops after rag.MaxMemoryBytes + 1 bytes, so an oversized input
// is refused without being read whole.
func memoryText(stdin io.Reader, args []string, file string) (string, error) {
	switch {
	case file != "" && len(args) > 0:
		return "", errors.New("give the text either as arguments or with --file, not both")
	case file == "" && len(args) == 0:
		return "", errors.New("no text: give it as arguments, or with --file PATH (--file - reads stdin)")
	case file == "":
		return strings.Join(args, " "), nil
	}
	r, name := stdin, "stdin"
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--file: %w", err)
		}
		defer fh.Close()
		r, name = fh, file
	}
	b, err := io.ReadAll(io.LimitReader(r, rag.MaxMemoryBytes+1))
	if err != nil {
		return "", fmt.Errorf("--file: reading %s: %w", name, err)
	}
	if len(b) > rag.MaxMemoryBytes {
		return "", fmt.Errorf("--file: %s holds more than %d bytes; a memory may hold at most %d: split it into several memories", name, rag.MaxMemoryBytes, rag.MaxMemoryBytes)
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

// termText makes s safe to print on a terminal: control characters
// (including line breaks, escape sequences and the C1 range), Unicode
// bidirectional overrides and invalid bytes become visible escapes, so a
// memory cannot move the cursor, recolour the screen or fake output lines.
func termText(s string) string {
	return escapeText(s, false)
}

// termLines is termText that keeps line breaks, for multi-line output.
func termLines(s string) string {
	return escapeText(s, true)
}

func escapeText(s string, keepNewlines bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && isBadByte(s, i):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && keepNewlines:
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isBadByte reports whether s[i] starts an invalid UTF-8 sequence (as
// opposed to an encoded U+FFFD).
func isBadByte(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 1
}

type searchHit struct {
	ID         string  `json:"id"`
	Similarity float64 `json:"similarity"`
	Relevance  float64 `json:"relevance"`
	Trusted    bool    `json:"trusted"`
	Source     string  `json:"source"`
	Truncated  bool    `json:"truncated"`
	Text       string  `json:"text"`
}

func newMemorySearchCmd(o *memoryOpts) *cobra.Command {
	var topK, budget int
	var threshold float64
	var where, typ string
	var render bool
	cmd := &cobra.Command{
		Use:   "search [flags] QUERY...",
		Short: "Retrieve the memories relevant to a query (MMR, relevance, token budget)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var filter *rag.Filter
			if where != "" {
				f, err := rag.ParseFilter([]byte(where))
				if err != nil {
					return withExit(2, fmt.Errorf("--where: %w", err))
				}
				filter = &f
			}
			if threshold > 1 {
				return withExit(2, fmt.Errorf("--threshold %v: must be at most 1 (negative disables it)", threshold))
			}
			env, err := o.open(cmd, threshold)
			if err != nil {
				return err
			}
			defer env.close()
			res, err := env.ret.Retrieve(cmd.Context(), rag.Query{Text: strings.Join(args, " "), TopK: topK, Where: filter, Type: typ, Budget: budget})
			if errors.Is(err, talos.ErrInputInvalid) {
				return withExit(2, err)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if render {
				fmt.Fprintln(out, termLines(res.Render()))
				return nil
			}
			hits := make([]searchHit, 0, len(res.Items))
			for _, it := range res.Items {
				hits = append(hits, searchHit{ID: it.ID, Similarity: it.Similarity, Relevance: it.Relevance.Score, Trusted: it.Trusted,
					Source: string(it.Source), Truncated: it.Truncated, Text: it.Text})
			}
			if o.jsonOut {
				return printJSON(out, map[string]any{"strategy": res.Strategy, "note": res.Note, "warning": res.Warning,
					"total_found": res.TotalFound, "returned": res.Returned, "total_tokens": res.TotalTokens, "results": hits})
			}
			fmt.Fprintf(out, "%s: %d found, %d after MMR and threshold, %d included (%d tokens)\n", res.Strategy, res.TotalFound, res.Returned, res.Included, res.TotalTokens)
			if res.Note != "" {
				fmt.Fprintln(out, "note:", res.Note)
			}
			for _, h := range hits {
				trust := "untrusted"
				if h.Trusted {
					trust = "trusted"
				}
				fmt.Fprintf(out, "%s  sim=%.3f rel=%.3f %s %s\n  %s\n", termText(h.ID), h.Similarity, h.Relevance, termText(h.Source), trust, termText(h.Text))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&topK, "top-k", rag.DefaultTopK, "memories to return (1-50)")
	f.Float64Var(&threshold, "threshold", 0, "minimum similarity after MMR; 0 takes the embedder's (hashembed: 0.35), negative disables")
	f.StringVar(&where, "where", "", `metadata filter in Chroma's where syntax, e.g. '{"priority":{"$in":["high","permanent"]}}'`)
	f.StringVar(&typ, "type", "", "query type for the relevance score's type match")
	f.IntVar(&budget, "budget", rag.DefaultBudget, "token budget of the assembled context")
	f.BoolVar(&render, "render", false, "print the context as the model would see it")
	return cmd
}

func newMemoryStatsCmd(o *memoryOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Count memories by priority and show the pruning thresholds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := o.open(cmd, 0)
			if err != nil {
				return err
			}
			defer env.close()
			ctx := cmd.Context()
			count, err := env.store.Count(ctx)
			if err != nil {
				return err
			}
			byPriority := map[string]int{}
			trusted := 0
			for off := 0; ; off += 1000 {
				page, err := env.store.List(ctx, rag.ListOptions{Offset: off, Limit: 1000})
				if err != nil {
					return err
				}
				for _, r := range page {
					m := r.Metadata.Memory()
					p := string(m.Priority)
					if p == "" {
						p = "(none)"
					}
					byPriority[p]++
					if m.Trusted {
						trusted++
					}
				}
				if len(page) < 1000 {
					break
				}
			}
			plan, err := env.pruner.Plan(ctx)
			if err != nil {
				return err
			}
			st := map[string]any{"count": count, "ceiling": env.ceiling, "prune_trigger": plan.Trigger, "prune_target": plan.Target,
				"by_priority": byPriority, "trusted": trusted, "store": env.where, "archive": env.opts.archive, "embedder": env.emb.Name()}
			var damaged []string
			if ss, ok := env.store.(*ragsql.Store); ok {
				damaged = ss.Damaged()
				st["damaged"] = damaged
			}
			if o.jsonOut {
				return printJSON(cmd.OutOrStdout(), st)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "memories: %d of %d (prune above %d down to %d)\n", count, env.ceiling, plan.Trigger, plan.Target)
			fmt.Fprintf(out, "trusted:  %d\n", trusted)
			keys := make([]string, 0, len(byPriority))
			for k := range byPriority {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(out, "  %-10s %d\n", k, byPriority[k])
			}
			fmt.Fprintf(out, "store:    %s (%s)\narchive:  %s\n", env.where, env.emb.Name(), env.opts.archive)
			if len(damaged) > 0 {
				fmt.Fprintf(out, "damaged:  %d skipped (restore them from a backup or delete them): %s\n", len(damaged), quoteIDs(damaged))
			}
			return nil
		},
	}
}

func newMemoryPruneCmd(o *memoryOpts) *cobra.Command {
	var dryRun, aggressive, temporary bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Prune the lowest-scoring memories above 90% of the ceiling, down to 80% (archived first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := o.open(cmd, 0)
			if err != nil {
				return err
			}
			defer env.close()
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if temporary {
				if dryRun {
					return withExit(2, errors.New("--temporary cannot be combined with --dry-run"))
				}
				n, err := env.pruner.DeleteExpiredTemporary(ctx, 0)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "deleted %d temporary memories older than 30 days (archived to %s)\n", n, env.opts.archive)
				return nil
			}
			params := prune.Params{TriggerRatio: prune.DefaultTriggerRatio, TargetRatio: prune.DefaultTargetRatio, Reason: "prune"}
			if aggressive {
				params = prune.Params{TriggerRatio: prune.AggressiveTriggerRatio, TargetRatio: prune.AggressiveTargetRatio, Reason: "aggressive"}
			}
			rep, err := env.pruner.Run(ctx, params, dryRun)
			if rep != nil {
				if o.jsonOut {
					if jerr := printJSON(out, rep); jerr != nil {
						return jerr
					}
				} else {
					printPruneReport(out, rep)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dryRun, "dry-run", false, "report what would be pruned, delete nothing")
	f.BoolVar(&aggressive, "aggressive", false, "use the emergency thresholds (above 80%, down to 80%)")
	f.BoolVar(&temporary, "temporary", false, "instead, delete temporary memories older than 30 days")
	return cmd
}

func printPruneReport(out io.Writer, rep *prune.Report) {
	fmt.Fprintln(out, rep.Reason)
	if !rep.Triggered {
		return
	}
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
	}
	n := rep.Deleted
	if rep.DryRun {
		n = len(rep.Candidates)
	}
	fmt.Fprintf(out, "%s %d of %d requested (%d protected)\n", verb, n, rep.ToDelete, rep.Protected)
	if rep.Insufficient {
		fmt.Fprintln(out, "warning: PRUNE_INSUFFICIENT_DELETABLE: guarantees leave fewer deletable memories than the target needs")
	}
	if rep.DryRun {
		for i, c := range rep.Candidates {
			if i == 20 {
				fmt.Fprintf(out, "  … and %d more\n", len(rep.Candidates)-20)
				break
			}
			fmt.Fprintf(out, "  %s score=%.4f priority=%s age=%.1fd\n", termText(c.ID), c.Score, termText(string(c.Priority)), c.AgeDays)
		}
		return
	}
	if rep.SkippedProtected > 0 {
		fmt.Fprintf(out, "skipped %d memories that became protected during the prune\n", rep.SkippedProtected)
	}
	fmt.Fprintf(out, "archive: %s (run %s)\n", rep.Archive, rep.Run)
	if rep.FailedBatches > 0 || len(rep.Failed) > 0 {
		fmt.Fprintf(out, "failed batches on first try: %d; still present: %d\n", rep.FailedBatches, len(rep.Failed))
	}
}

func newMemoryRestoreCmd(o *memoryOpts) *cobra.Command {
	var ids []string
	var run string
	var overwrite, dryRun bool
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Put pruned memories back from the archive",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := o.open(cmd, 0)
			if err != nil {
				return err
			}
			defer env.close()
			rep, err := env.pruner.Restore(cmd.Context(), prune.RestoreOptions{IDs: ids, Run: run, Overwrite: overwrite, DryRun: dryRun})
			if err != nil {
				if errors.Is(err, talos.ErrConfigInvalid) {
					return withExit(2, err)
				}
				return err
			}
			if o.jsonOut {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			if rep.NoArchive {
				fmt.Fprintf(cmd.OutOrStdout(), "nothing to restore: no memory has been pruned yet (no archive at %s)\n", env.opts.archive)
				return nil
			}
			verb := "restored"
			if dryRun {
				verb = "would restore"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d memories (%d already present, skipped; %d archive entries matched)\n", verb, rep.Restored, rep.Skipped, rep.Entries)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&ids, "id", nil, "restore only these ids (repeatable)")
	f.StringVar(&run, "run", "", "restore only the memories of one prune run")
	f.BoolVar(&overwrite, "overwrite", false, "replace memories that exist again under the same id")
	f.BoolVar(&dryRun, "dry-run", false, "count what would be restored")
	return cmd
}

// quoteIDs lists ids quoted (control characters escaped), at most 20.
func quoteIDs(ids []string) string {
	var b strings.Builder
	for i, id := range ids {
		if i == 20 {
			fmt.Fprintf(&b, " and %d more", len(ids)-20)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(id))
	}
	return b.String()
}
