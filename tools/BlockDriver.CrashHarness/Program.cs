using BlockDriver.CrashHarness;
using BlockDriver.Vhdx;

// Usage: BlockDriver.CrashHarness FILE SEED STEPS
// Opens FILE (a VHDX, with its chain) for writing and runs the seeded workload. Prints "ready" once open and
// "ack N" after each completed flush (steps before N are durable). Meant to be killed with SIGKILL at any point.
if (args.Length != 3 || !int.TryParse(args[1], out int seed) || !int.TryParse(args[2], out int steps))
{
    await Console.Error.WriteLineAsync("usage: BlockDriver.CrashHarness FILE SEED STEPS");
    return 2;
}

await using VhdxDisk disk = VhdxDisk.Open(args[0]);
Console.Out.Flush();
await Console.Out.WriteLineAsync("ready");
await Console.Out.FlushAsync();
byte[] buffer = new byte[6144 * CrashWorkload.SectorSize];
foreach (CrashOp op in CrashWorkload.Generate(seed, disk.Length, steps))
{
    switch (op.Kind)
    {
        case CrashOpKind.Flush:
            await disk.FlushAsync();
            await Console.Out.WriteLineAsync($"ack {op.Index}");
            await Console.Out.FlushAsync();
            break;
        case CrashOpKind.WriteZeroes:
            await disk.WriteZeroesAsync(op.Offset, op.Length);
            break;
        default:
            long first = op.Offset / CrashWorkload.SectorSize;
            for (int s = 0; s < op.Length / CrashWorkload.SectorSize; s++)
            {
                CrashWorkload.SectorPattern(seed, op.Index, first + s, buffer.AsSpan(s * CrashWorkload.SectorSize, CrashWorkload.SectorSize));
            }

            await disk.WriteAsync(op.Offset, buffer.AsMemory(0, op.Length));
            break;
    }
}

await Console.Out.WriteLineAsync("done");
return 0;
