using System.Globalization;
using System.Security.Cryptography;
using BlockDriver.Cli.Tests.Support;
using BlockDriver.Vhdx;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

/// <summary>Crafted VHDX files through the real CLI (issue 14, item 3): a file's claims never drive memory, and its
/// parent locator never reaches, nor describes, a file outside the directory parents may come from.</summary>
public class CraftedVhdxTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    // A file standing for /etc/shadow: its size and content must never show in an error.
    private const int SecretLength = 12_345;

    [Fact]
    public async Task Img_info_of_a_log_claiming_a_huge_file_fails_clearly_in_bounded_memory()
    {
        string crafted = PathOf("crafted.vhdx");
        CraftedVhdx.WriteLogClaimingHugeFile(crafted);
        string before = Hash(crafted);

        (ProcessResult result, long peakKiB) = await RunMeasuredAsync("img", "info", crafted);

        // Before the fix: exit 0, "virtual size: 64 TiB", 566 MiB peak RSS (a 512 MiB BAT read because the log said
        // the file was 600 MiB).
        AssertError(result, 1, "lies past the end of the 4194304-byte file");
        Assert.True(peakKiB < 150 * 1024, $"img info peaked at {peakKiB / 1024} MiB RSS on a 4 MiB file");
        Assert.Equal(before, Hash(crafted));
    }

    [Theory]
    [InlineData("log claiming a huge file")]
    [InlineData("parent locator outside")]
    public async Task Layer_import_of_a_crafted_file_leaves_the_store_as_it_was(string kind)
    {
        await ImportAsync(WriteRaw("base.raw", (0, 65536, 1)), "base");
        string crafted = kind == "log claiming a huge file"
            ? CraftLogClaimingHugeFile()
            : await CraftChildOfOutsideFileAsync(Directory.CreateDirectory(PathOf("import")).FullName, symlink: false);
        string before = await StoreStateAsync();

        ProcessResult result = await StoreAsync("layer", "import", crafted, "--id", "crafted");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(kind == "log claiming a huge file" ? "lies past the end of the" : "not inside", result.Stderr, StringComparison.Ordinal);
        AssertSecretNotDescribed(result);
        Assert.Equal(before, await StoreStateAsync());
    }

    [Theory]
    [InlineData("info", false)]
    [InlineData("check", false)]
    [InlineData("map", false)]
    [InlineData("convert", false)]
    [InlineData("compare", false)]
    [InlineData("info", true)]
    [InlineData("check", true)]
    public async Task Parent_locator_to_a_host_file_outside_the_directory_is_refused_without_describing_it(string command, bool symlink)
    {
        string images = Directory.CreateDirectory(PathOf("images")).FullName;
        string child = await CraftChildOfOutsideFileAsync(images, symlink);
        string[] args = command switch
        {
            "convert" => ["img", "convert", child, PathOf("out.raw")],
            "compare" => ["img", "compare", child, child],
            _ => ["img", command, child],
        };

        ProcessResult existing = await RunAsync(args);
        File.Delete(PathOf("outside/shadow"));
        ProcessResult missing = await RunAsync(args);

        Assert.NotEqual(0, existing.ExitCode);
        Assert.Contains($"not inside {images}", existing.Stdout + existing.Stderr, StringComparison.Ordinal);
        AssertSecretNotDescribed(existing);

        // Whether the outside file exists or not, the answer is the same.
        Assert.Equal(existing.ExitCode, missing.ExitCode);
        Assert.Equal(existing.Stdout + existing.Stderr, missing.Stdout + missing.Stderr);
        Assert.False(File.Exists(PathOf("out.raw")));
    }

    [Fact]
    public async Task Parent_dir_names_the_directory_parents_may_come_from()
    {
        string bases = Directory.CreateDirectory(PathOf("bases")).FullName;
        string children = Directory.CreateDirectory(PathOf("children")).FullName;
        string parent = Path.Combine(bases, "base.vhdx");
        string child = Path.Combine(children, "child.vhdx");
        VhdxFile.CreateDynamic(parent, 64 * MiB);
        await VhdxFile.CreateDifferencingAsync(child, parent);

        ProcessResult refused = await RunAsync("img", "info", child);
        AssertError(refused, 1, $"not inside {children}");

        ProcessResult other = await RunAsync("img", "info", "--parent-dir", children, child);
        AssertError(other, 1, $"not inside {children}");

        ProcessResult allowed = await RunOkAsync("img", "info", "--parent-dir", Temp.FullName, child);
        Assert.Contains($"actual path: {parent}", allowed.Stdout, StringComparison.Ordinal);

        ProcessResult noDir = await RunAsync("img", "info", "--parent-dir", PathOf("nowhere"), child);
        AssertError(noDir, 1, "--parent-dir");
    }

    private string CraftLogClaimingHugeFile()
    {
        string crafted = PathOf("crafted.vhdx");
        CraftedVhdx.WriteLogClaimingHugeFile(crafted);
        return crafted;
    }

    // A differencing file in `directory` whose locator names TEMP/outside/shadow: through relative_path "..\outside\
    // shadow" and absolute_win32_path, or (symlink) through relative_path ".\link.vhdx", a link to it. The parent was a
    // real VHDX when the child was made, then replaced by a secret-looking file of SecretLength bytes.
    private async Task<string> CraftChildOfOutsideFileAsync(string directory, bool symlink)
    {
        string outside = Directory.CreateDirectory(PathOf("outside")).FullName;
        string secret = Path.Combine(outside, "shadow");
        string parent = symlink ? Path.Combine(directory, "link.vhdx") : secret;
        string child = Path.Combine(directory, "child.vhdx");
        VhdxFile.CreateDynamic(parent, 64 * MiB);
        await VhdxFile.CreateDifferencingAsync(child, parent);
        File.Delete(parent);
        if (symlink)
        {
            File.CreateSymbolicLink(parent, secret);
        }

        File.WriteAllText(secret, "root:$y$j9T$secret:19000:0:99999:7:::\n".PadRight(SecretLength, '#'));
        Assert.Equal(SecretLength, new FileInfo(secret).Length);
        return child;
    }

    private static void AssertSecretNotDescribed(ProcessResult result)
    {
        string said = result.Stdout + result.Stderr;
        Assert.DoesNotContain(SecretLength.ToString(CultureInfo.InvariantCulture), said, StringComparison.Ordinal);
        Assert.DoesNotContain("12 KiB", said, StringComparison.Ordinal);
        Assert.DoesNotContain("root:", said, StringComparison.Ordinal);
        Assert.DoesNotContain("shorter", said, StringComparison.Ordinal);
        Assert.DoesNotContain("signature", said, StringComparison.Ordinal);
    }

    // Every file of the store with its length and hash, and the layer list.
    private async Task<string> StoreStateAsync()
    {
        var lines = new List<string>();
        foreach (string file in Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string relative = Path.GetRelativePath(Root, file);
            bool changesOnEveryRun = relative.StartsWith("run", StringComparison.Ordinal) || relative.StartsWith("catalog.db", StringComparison.Ordinal);
            lines.Add(changesOnEveryRun ? relative : $"{relative} {new FileInfo(file).Length} {Hash(file)}");
        }

        lines.Add((await StoreOkAsync("layer", "ls")).Stdout);
        return string.Join('\n', lines);
    }

    private static string Hash(string path)
    {
        using FileStream stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream));
    }

    // Runs the CLI under GNU time (/usr/bin/time, Debian package "time"), which reports the child's peak RSS.
    private async Task<(ProcessResult Result, long PeakKiB)> RunMeasuredAsync(params string[] args)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
        string cli = Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");
        string report = PathOf("time.txt");
        ProcessResult result = await ChildProcess.RunAsync("/usr/bin/time", ["-f", "%M", "-o", report, dotnet, cli, .. args], Temp.FullName);
        long peakKiB = long.Parse(File.ReadAllLines(report).Last(l => l.Length > 0), CultureInfo.InvariantCulture);
        Output.WriteLine($"$ blockdriver {string.Join(' ', args)}\n{result}\npeak RSS {peakKiB} KiB");
        return (result, peakKiB);
    }
}
