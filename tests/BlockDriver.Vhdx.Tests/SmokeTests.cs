
namespace BlockDriver.Vhdx.Tests;

public class SmokeTests
{
    [Fact]
    public async Task Dynamic_and_differencing_round_trip()
    {
        string dir = Directory.CreateTempSubdirectory("bd-smoke").FullName;
        try
        {
            string basePath = Path.Combine(dir, "base.vhdx");
            VhdxFile.CreateDynamic(basePath, 64L << 20);
            byte[] a = new byte[8192];
            new Random(1).NextBytes(a);
            await using (VhdxDisk d = VhdxDisk.Open(basePath))
            {
                await d.WriteAsync(4096, a);
                await d.FlushAsync();
            }

            string child = Path.Combine(dir, "child.vhdx");
            await VhdxFile.CreateDifferencingAsync(child, basePath);
            byte[] b = new byte[512];
            new Random(2).NextBytes(b);
            await using (VhdxDisk d = VhdxDisk.Open(child))
            {
                await d.WriteAsync(4096 + 512, b);
            }

            await using (VhdxDisk d = VhdxDisk.Open(child, new VhdxOpenOptions { ReadOnly = true }))
            {
                byte[] r = new byte[8192];
                await d.ReadAsync(4096, r);
                Assert.Equal(a.AsSpan(0, 512).ToArray(), r.AsSpan(0, 512).ToArray());
                Assert.Equal(b, r.AsSpan(512, 512).ToArray());
                Assert.Equal(a.AsSpan(1024).ToArray(), r.AsSpan(1024).ToArray());
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
