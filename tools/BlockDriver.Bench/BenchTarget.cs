using BlockDriver.Abstractions;

namespace BlockDriver.Bench;

/// <summary>A device under test: how to open its prepared data for the read workloads, and how to make a fresh,
/// empty writable device for each write run (deleted with <see cref="DeleteWriter"/> after the run).</summary>
/// <param name="Name">Row label.</param>
/// <param name="OpenReader">Opens the prepared device read-only; the caller disposes it.</param>
/// <param name="CreateWriterAsync">Creates an empty device at <paramref name="WriterPath"/> and opens it for
/// writing; the caller disposes it.</param>
/// <param name="WriterPath">The file a write run creates.</param>
internal sealed record BenchTarget(
    string Name,
    Func<IBlockDevice> OpenReader,
    Func<CancellationToken, Task<IBlockDevice>> CreateWriterAsync,
    string WriterPath)
{
    /// <summary>Chain depth (differencing layers over the base) for chain rows; null otherwise.</summary>
    public int? ChainDepth { get; init; }

    public bool IsBaseline { get; init; }

    public void DeleteWriter() => File.Delete(WriterPath);
}
