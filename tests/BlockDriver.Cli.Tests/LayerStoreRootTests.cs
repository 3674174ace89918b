using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

/// <summary>How the store commands pick and open a store: --root, BLOCKDRIVER_ROOT, ./.blockdriver, and what they
/// refuse to treat as a store.</summary>
public class LayerStoreRootTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Environment_variable_names_the_store_and_the_root_option_wins_over_it()
    {
        string fromEnvironment = PathOf("env-store");
        var environment = new Dictionary<string, string?> { ["BLOCKDRIVER_ROOT"] = fromEnvironment };

        ProcessResult created = await RunWithEnvironmentAsync(environment, "layer", "create", "--blank", "--id", "e", "--size", "64M");
        await RunWithEnvironmentAsync(environment, "--root", Root, "layer", "create", "--blank", "--id", "r", "--size", "64M");

        Assert.Equal(0, created.ExitCode);
        Assert.True(File.Exists(Path.Combine(fromEnvironment, "layers", "e.vhdx")));
        Assert.Equal(["r"], await IdsAsync());
        Assert.Contains("e", (await RunWithEnvironmentAsync(environment, "layer", "ls")).Stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(PathOf(".blockdriver")));
    }

    [Fact]
    public async Task Default_store_is_dot_blockdriver_in_the_working_directory()
    {
        var environment = new Dictionary<string, string?> { ["BLOCKDRIVER_ROOT"] = null };

        ProcessResult created = await RunWithEnvironmentAsync(environment, "layer", "create", "--blank", "--id", "d", "--size", "64M");

        Assert.Equal(0, created.ExitCode);
        Assert.True(File.Exists(PathOf(".blockdriver/layers/d.vhdx")));
        Assert.True(File.Exists(PathOf(".blockdriver/catalog.db")));
    }

    [Theory]
    [InlineData("layer", "ls")]
    [InlineData("layer", "inspect", "x")]
    [InlineData("df")]
    [InlineData("store", "check")]
    public async Task Missing_store_is_an_error_and_is_not_created(params string[] args)
    {
        AssertError(await StoreAsync(args), 1, $"no BlockDriver store at {Root} (create a layer to make one).");

        Assert.False(Directory.Exists(Root));
    }

    [Fact]
    public async Task Non_empty_directory_without_a_catalog_is_not_a_store_and_is_left_alone()
    {
        Directory.CreateDirectory(Root);
        await File.WriteAllTextAsync(Path.Combine(Root, "notes.txt"), "mine");

        AssertError(await StoreAsync("layer", "ls"), 1, $"{Root} is not a BlockDriver store (it has no catalog.db) and is not empty.");
        AssertError(await StoreAsync("layer", "create", "--blank", "--size", "64M"), 1, "is not a BlockDriver store");

        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(Root).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Garbage_catalog_is_refused_and_the_directory_is_left_as_it_was()
    {
        Directory.CreateDirectory(Root);
        byte[] garbage = TestPatterns.Bytes(7, 8192);
        await File.WriteAllBytesAsync(Path.Combine(Root, "catalog.db"), garbage);

        AssertError(await StoreAsync("layer", "ls"), 1, $"{Path.Combine(Root, "catalog.db")}: not a BlockDriver catalog");
        AssertError(await StoreAsync("layer", "create", "--blank", "--id", "x", "--size", "64M"), 1, "not a BlockDriver catalog");

        Assert.Equal(["catalog.db"], Directory.GetFileSystemEntries(Root).Select(Path.GetFileName));
        Assert.Equal(garbage, await File.ReadAllBytesAsync(Path.Combine(Root, "catalog.db")));
    }

    [Fact]
    public async Task Another_programs_sqlite_database_is_refused_and_not_modified()
    {
        Directory.CreateDirectory(Root);
        string catalog = Path.Combine(Root, "catalog.db");
        using (var connection = new SqliteConnection($"Data Source={catalog};Pooling=False"))
        {
            connection.Open();
            using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');";
            command.ExecuteNonQuery();
        }

        byte[] before = await File.ReadAllBytesAsync(catalog);

        AssertError(await StoreAsync("layer", "ls"), 1, $"{catalog}: not a BlockDriver catalog");

        Assert.Equal(before, await File.ReadAllBytesAsync(catalog));
        Assert.Equal(["catalog.db"], Directory.GetFileSystemEntries(Root).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Root_that_is_a_file_is_refused()
    {
        await File.WriteAllTextAsync(Root, "not a directory");

        AssertError(await StoreAsync("layer", "create", "--blank", "--size", "64M"), 1, $"{Root} is a file, not a BlockDriver store.");

        Assert.Equal("not a directory", await File.ReadAllTextAsync(Root));
    }
}
