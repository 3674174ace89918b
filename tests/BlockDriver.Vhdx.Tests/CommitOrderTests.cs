using BlockDriver.Testing;

namespace BlockDriver.Vhdx.Tests;

/// <summary>A commit larger than one log entry, cut short after its first entry: the BAT goes first, so a crash
/// there leaves blocks allocated with fewer sector bits than were written (their sectors still read from the
/// parent), never sector bits for a block the BAT does not point at, which a later allocation would pick up and
/// read as zeroes instead of the parent's data.</summary>
public sealed class CommitOrderTests : IDisposable
{
    private const int MiB = 1 << 20;

    // One 4 KiB sector-bitmap page covers 16 MiB of a disk with 512-byte sectors: a write every 16 MiB dirties one
    // page each, and 200 of them need two log entries (about 120 pages fit in one of the default 1 MiB log).
    private const long Stride = 16L * MiB;
    private const int Writes = 200;

    private readonly string _dir = Directory.CreateTempSubdirectory("bd-commit").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_commit_cut_after_its_first_log_entry_never_hides_the_parent()
    {
        string basePath = Path.Combine(_dir, "base.vhdx");
        VhdxFile.CreateDynamic(basePath, Stride * Writes, new VhdxCreateOptions { BlockSize = MiB });
        await using (VhdxDisk parent = VhdxDisk.Open(basePath))
        {
            for (int i = 0; i < Writes; i++)
            {
                await parent.WriteAsync(i * Stride, TestPatterns.Bytes(i, 8192));
            }
        }

        string childPath = Path.Combine(_dir, "child.vhdx");
        await VhdxFile.CreateDifferencingAsync(childPath, basePath);
        VhdxDisk child = VhdxDisk.Open(childPath);
        await using (child)
        {
            // The sector-bitmap block is allocated and committed first, so that bits the cut commit sets in it are
            // visible after the replay whether or not the BAT entries of their blocks made it.
            await child.WriteAsync((Stride * Writes) - 4096, TestPatterns.Bytes(3000, 4096));
            await child.Top.CommitAsync();
            child.Top.FailAfterLogWrite = true;
            for (int i = 0; i < Writes; i++)
            {
                await child.WriteAsync(i * Stride, TestPatterns.Bytes(1000 + i, 4096));
            }

            await Assert.ThrowsAsync<IOException>(async () => await child.Top.CommitAsync());
        }

        // The reopen replays the one entry written. Then a second write in every block: a block the replayed BAT
        // did not allocate is allocated now, and must not inherit sector bits from the cut commit.
        int newer = 0;
        await using (VhdxDisk reopened = VhdxDisk.Open(childPath))
        {
            Assert.True(reopened.Top.ReplayedLog);
            for (int i = 0; i < Writes; i++)
            {
                await reopened.WriteAsync((i * Stride) + 65536, TestPatterns.Bytes(2000 + i, 512));
            }

            for (int i = 0; i < Writes; i++)
            {
                byte[] first = new byte[4096];
                await reopened.ReadAsync(i * Stride, first);
                byte[] parentData = TestPatterns.Bytes(i, 8192).AsSpan(0, 4096).ToArray();
                byte[] written = TestPatterns.Bytes(1000 + i, 4096);
                Assert.True(first.AsSpan().SequenceEqual(parentData) || first.AsSpan().SequenceEqual(written),
                    $"write {i}: the sectors read as neither the parent's data nor the unflushed write");
                newer += first.AsSpan().SequenceEqual(written) ? 1 : 0;

                byte[] rest = new byte[4096];
                await reopened.ReadAsync((i * Stride) + 4096, rest);
                Assert.Equal(TestPatterns.Bytes(i, 8192).AsSpan(4096).ToArray(), rest);
            }
        }

        // Both outcomes occur, so the commit really was cut between its entries.
        Assert.InRange(newer, 1, Writes - 1);
    }
}
