package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/einvault/einvault/internal/corpus"
	"github.com/spf13/cobra"
)

// newCorpusCmd returns "einvault corpus", which generates and mutates the
// deterministic e-invoice corpus used by benchmarks and tests.
func newCorpusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "corpus",
		Short: "Generate or change a synthetic e-invoice corpus for benchmarks and tests",
		Long: `Generate a deterministic, realistic e-invoice corpus, or change one the way
a day of business does.

A corpus holds Vietnamese Circular 78 invoice XML files (3-12 KB, folders by
year and month), incompressible PDF-like renderings for some invoices, and one
large MySQL-dump-like file of the invoice database. The same options always
give the same bytes, so benchmark corpora can be cached and compared.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCorpusGenerateCmd(), newCorpusMutateCmd())
	return cmd
}

func newCorpusGenerateCmd() *cobra.Command {
	var (
		opts     corpus.Options
		jsonOut  bool
		progress bool
	)
	cmd := &cobra.Command{
		Use:   "generate DIR",
		Short: "Write a new corpus into DIR (missing or empty)",
		Long: `Write a new corpus into DIR, which must be missing or empty:

  corpus.json                                  the options used
  invoices/YYYY/MM/<MST>_<form><series>_<number>.xml
  renderings/YYYY/MM/<same name>.pdf           for --pdf-ratio of the invoices
  db/einvoice_dump.sql                         about --dump-size bytes

--files 100000 gives about 1.1 GB. Output is byte-for-byte the same for the
same --files, --seed, --pdf-ratio and --dump-size.`,
		Example: `  einvault corpus generate /tmp/corpus
  einvault corpus generate /tmp/corpus-100k --files 100000 --seed 1
  einvault corpus generate /tmp/xml-only --files 5000 --pdf-ratio 0 --dump-size -1 --json`,
		Args: corpusArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Files <= 0 {
				return fmt.Errorf("--files must be positive, got %d", opts.Files)
			}
			if opts.PDFRatio <= 0 {
				opts.PDFRatio = -1 // the library reads 0 as "default"; on the command line 0 means none
			}
			stop := func() {}
			if progress || (!jsonOut && corpusIsTerminal(cmd.ErrOrStderr())) {
				opts.Progress, stop = corpusProgress(cmd.ErrOrStderr(), "generating")
			}
			st, err := corpus.Generate(cmd.Context(), args[0], opts)
			stop()
			if err != nil {
				return err
			}
			if jsonOut {
				return corpusJSON(cmd.OutOrStdout(), map[string]any{
					"message_type": "corpus_generated", "dir": args[0], "seed": opts.Seed,
					"files": st.Files, "bytes": st.Bytes, "invoices": st.Invoices, "renderings": st.Renderings,
					"xml_bytes": st.XMLBytes, "pdf_bytes": st.PDFBytes, "dump_bytes": st.DumpBytes,
					"seconds": st.Duration.Seconds(),
				})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "generated %d files, %d bytes (%s) in %s: %d invoices, %d renderings, dump %s (%s)\n",
				st.Files, st.Bytes, corpusSize(st.Bytes), args[0], st.Invoices, st.Renderings, corpusSize(st.DumpBytes), st.Duration.Round(time.Millisecond))
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Files, "files", 100000, "number of invoice XML files")
	f.Int64Var(&opts.Seed, "seed", 1, "seed; the same seed gives the same bytes")
	f.Float64Var(&opts.PDFRatio, "pdf-ratio", corpus.DefaultPDFRatio, "fraction of invoices with a PDF rendering (0: none)")
	f.Int64Var(&opts.DumpSize, "dump-size", 0, "approximate size of the SQL dump in bytes (0: scale with --files, negative: none)")
	f.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	f.BoolVar(&progress, "progress", false, "show progress on stderr even when it is not a terminal")
	return cmd
}

func newCorpusMutateCmd() *cobra.Command {
	var (
		opts     corpus.MutateOptions
		jsonOut  bool
		progress bool
	)
	cmd := &cobra.Command{
		Use:   "mutate DIR",
		Short: "Change some files of a corpus and add new invoices",
		Long: `Change a fraction of the files of a corpus made by 'corpus generate' and add
new invoices, like a day of business: changed invoices are marked adjusted and
re-signed, changed renderings are rendered again, a few MB of rows are
appended to the dump, and new invoices continue each series in the latest
month. The same --seed on the same corpus gives the same bytes; use another
seed for each further round.`,
		Example: `  einvault corpus mutate /tmp/corpus
  einvault corpus mutate /tmp/corpus --seed 2 --change 0.10 --add 0.02 --json`,
		Args: corpusArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// the library reads 0 as "default"; on the command line 0 means none
			if opts.Change <= 0 {
				opts.Change = -1
			}
			if opts.Add <= 0 {
				opts.Add = -1
			}
			stop := func() {}
			if progress || (!jsonOut && corpusIsTerminal(cmd.ErrOrStderr())) {
				opts.Progress, stop = corpusProgress(cmd.ErrOrStderr(), "mutating")
			}
			st, err := corpus.Mutate(cmd.Context(), args[0], opts)
			stop()
			if err != nil {
				return err
			}
			if jsonOut {
				return corpusJSON(cmd.OutOrStdout(), map[string]any{
					"message_type": "corpus_mutated", "dir": args[0], "seed": opts.Seed,
					"changed": st.Changed, "changed_invoices": st.ChangedInvoices, "changed_renderings": st.ChangedRenderings,
					"dump_appended_bytes": st.DumpAppended, "added": st.Added, "added_invoices": st.AddedInvoices,
					"added_renderings": st.AddedRenderings, "bytes_written": st.BytesWritten, "seconds": st.Duration.Seconds(),
				})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "mutated %s: %d files changed (%d invoices, %d renderings, dump +%s), %d files added, %d bytes (%s) written in %s\n",
				args[0], st.Changed, st.ChangedInvoices, st.ChangedRenderings, corpusSize(st.DumpAppended), st.Added,
				st.BytesWritten, corpusSize(st.BytesWritten), st.Duration.Round(time.Millisecond))
			return err
		},
	}
	f := cmd.Flags()
	f.Int64Var(&opts.Seed, "seed", 1, "seed choosing what changes; use a new one for each round")
	f.Float64Var(&opts.Change, "change", corpus.DefaultChange, "fraction of existing files to change (0: none)")
	f.Float64Var(&opts.Add, "add", corpus.DefaultAdd, "new invoices as a fraction of existing ones (0: none)")
	f.Int64Var(&opts.DumpAppend, "dump-append", 0, "bytes of rows to append to the dump (0: 5% of it, 64 KiB to 8 MiB)")
	f.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	f.BoolVar(&progress, "progress", false, "show progress on stderr even when it is not a terminal")
	return cmd
}

func corpusArgs(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s needs exactly one DIR argument, got %d (see '%s --help')", cmd.Name(), len(args), cmd.CommandPath())
	}
	return nil
}

func corpusJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func corpusIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// corpusProgress returns a progress callback drawing one line on w, and a
// function that ends the line.
func corpusProgress(w io.Writer, verb string) (func(done, total int), func()) {
	start := time.Now()
	drawn := false
	return func(done, total int) {
			fmt.Fprintf(w, "\r%s %d/%d (%.0f%%) %s ", verb, done, total, 100*float64(done)/float64(max(total, 1)), time.Since(start).Round(time.Second))
			drawn = true
		}, func() {
			if drawn {
				fmt.Fprintln(w)
			}
		}
}

func corpusSize(n int64) string { return formatBytes(uint64(max(n, 0))) }
