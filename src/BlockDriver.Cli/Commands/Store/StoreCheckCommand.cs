using System.CommandLine;
using System.Text.Json;
using BlockDriver.Cli.Output;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Store;

/// <summary><c>store check [--json]</c>: runs reconciliation and lists what it found and did (it also runs, quietly
/// unless it repairs something, whenever any command opens the store).</summary>
internal sealed class StoreCheckCommand : StoreCommand
{
    private readonly Option<bool> _json = new("--json") { Description = "Print a JSON array of findings." };

    public StoreCheckCommand()
        : base("check", "Reconcile the catalog with the layer files: finish or undo interrupted operations, quarantine stray files, report missing ones.")
    {
        Add(_json);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        // Opening the store reconciled already (and reported on stderr); a second run finds only what is still
        // wrong (missing files are reported every time). Each finding is listed once.
        IReadOnlyList<ReconcileAction> again = await store.ReconcileAsync(ct).ConfigureAwait(false);
        List<ReconcileAction> findings = [.. store.Reconciliation.Concat(again).DistinctBy(f => (f.Subject, f.Finding))];
        if (parse.GetValue(_json))
        {
            Console.WriteLine(JsonSerializer.Serialize([.. findings.Select(f => new ReconcileJson(f.Subject, f.Finding, f.Action))],
                CliJsonContext.Default.ListReconcileJson));
        }
        else
        {
            Console.WriteLine(findings.Count == 0 ? $"{store.Root}: consistent." : string.Join(Environment.NewLine, findings));
        }

        return ExitCodes.Success;
    }
}
