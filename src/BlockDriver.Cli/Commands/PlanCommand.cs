using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Output;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands;

/// <summary><c>plan ID [--containers N] [--write SIZE] [--json]</c>: what N containers on an image will cost.</summary>
internal sealed class PlanCommand : StoreCommand
{
    private readonly Argument<string> _id = new("ID") { Description = "The sealed (image) layer the containers would run on." };
    private readonly Option<int> _containers = new("--containers", "-n") { Description = "How many containers.", DefaultValueFactory = _ => 1, HelpName = "N" };
    private readonly Option<string> _write = new("--write", "-w") { Description = "New data each container writes (e.g. 100M).", DefaultValueFactory = _ => "0", HelpName = "SIZE" };
    private readonly Option<bool> _json = new("--json") { Description = "Print a JSON object." };

    public PlanCommand()
        : base("plan", "Estimate the disk space N containers on an image will take, measured on a scratch child of the image.")
    {
        Add(_id);
        Add(_containers);
        Add(_write);
        Add(_json);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        CapacityPlan plan = await store.PlanAsync(parse.GetValue(_id)!, parse.GetValue(_containers),
            ByteSize.Parse(parse.GetValue(_write)!, "write size"), ct).ConfigureAwait(false);
        if (parse.GetValue(_json))
        {
            Console.WriteLine(JsonSerializer.Serialize(plan, CliJsonContext.Default.CapacityPlan));
            return ExitCodes.Success;
        }

        Tables.Write(["", "BYTES", ""],
        [
            ["image (shared, already on disk)", ByteSize.Format(plan.ImageBytes), plan.Image],
            ["per container", ByteSize.Format(plan.PerContainer), $"writing {ByteSize.Format(plan.WritePerContainer)}"],
            ["all containers", ByteSize.Format(plan.Total), $"{plan.Containers.ToString(CultureInfo.InvariantCulture)} containers"],
            ["worst case (every disk full)", ByteSize.Format(plan.WorstCase), plan.FitsWorstCase ? "fits" : "overcommitted"],
            ["available", ByteSize.Format(plan.Available), plan.Fits ? "fits" : "DOES NOT FIT"],
        ]);
        return ExitCodes.Success;
    }
}
