using System.Text.Json;
using BlockDriver.Abstractions;

namespace BlockDriver.Core.Tests;

public sealed class PlanTests : StoreTestBase
{
    [Fact]
    public async Task The_plan_for_n_containers_matches_what_they_then_take()
    {
        await SealedBaseAsync(length: 8 << 20);
        const int containers = 3;
        const int write = 10 << 20;

        CapacityPlan plan = await Store.PlanAsync("base", containers, write);
        Assert.Equal(Store.GetUsage("base").VirtualSize, plan.ImageBytes);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(Root, "run"), "plan-*"));
        Assert.Single(Store.List());

        long actual = 0;
        for (int i = 0; i < containers; i++)
        {
            await Store.CloneAsync("base", $"c{i}");
            await WriteAsync($"c{i}", 0, write, i);
            actual += Store.GetUsage($"c{i}").Size;
        }

        Assert.InRange(plan.Total, actual * 0.95, actual * 1.05);
        Assert.True(plan.WorstCase >= containers * Capacity);
        Assert.True(plan.Fits);
    }

    [Fact]
    public async Task Planning_on_a_writable_layer_or_with_a_write_larger_than_the_disk_is_refused()
    {
        await Store.CreateAsync(new LayerSpec { Id = "w", Capacity = Capacity });
        await ThrowsAsync(ErrorKind.InvalidArgument, () => Store.PlanAsync("w", 1, 0), "writable");
        await Store.SealAsync("w");
        await ThrowsAsync(ErrorKind.InvalidArgument, () => Store.PlanAsync("w", 1, Capacity + 1), "write size");
    }

    [Fact]
    public async Task The_plan_command_prints_json()
    {
        await SealedBaseAsync();
        ProcessResult result = await CliProcess.RunAsync(new Dictionary<string, string>(), "--root", Root, "plan", "base", "-n", "20", "--write", "4M", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        using JsonDocument json = JsonDocument.Parse(result.Stdout);
        Assert.Equal(20, json.RootElement.GetProperty("containers").GetInt32());
        Assert.Equal(4 << 20, json.RootElement.GetProperty("writePerContainer").GetInt64());
        Assert.True(json.RootElement.GetProperty("total").GetInt64() >= 20L * (4 << 20));
    }
}
