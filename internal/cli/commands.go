package cli

import "github.com/spf13/cobra"

// commands lists every top-level command.
func commands(g *Globals) []*cobra.Command {
	return []*cobra.Command{
		newInitCmd(g),
		newBackupCmd(g),
		newSnapshotsCmd(g),
		newLsCmd(g),
		newFindCmd(g),
		newDiffCmd(g),
		newRestoreCmd(g),
		newDumpCmd(g),
		newCheckCmd(g),
		newForgetCmd(g),
		newPruneCmd(g),
		newUnlockCmd(g),
		newKeyCmd(g),
		newStatsCmd(g),
		newCopiesCmd(g),
		newSyncCmd(g),
		newRepairCmd(g),
		newInvoicesCmd(g),
		newVersionCmd(g),
		newCorpusCmd(),
		newConfigCmd(g),
		newDBCmd(g),
		newAlertsCmd(g),
		newReportCmd(g),
		newJournalCmd(g),
		newPGCmd(g),
		newWALPushCmd(g),
		newWALFetchCmd(g),
		newDaemonCmd(g),
		newRunCmd(g),
		newDrillCmd(g),
	}
}
