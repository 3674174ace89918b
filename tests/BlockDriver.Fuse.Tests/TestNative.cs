using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Fuse.Tests;

internal static partial class TestNative
{
    public const int FallocKeepSize = 0x01;
    public const int FallocPunchHole = 0x02;
    public const int FallocZeroRange = 0x10;
    public const int SigTerm = 15;

    /// <summary>fallocate(2); returns 0 or the errno.</summary>
    public static int Fallocate(SafeFileHandle file, int mode, long offset, long length) =>
        FallocateRaw(file, mode, offset, length) == 0 ? 0 : Marshal.GetLastPInvokeError();

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int FallocateRaw(SafeFileHandle fd, int mode, long offset, long length);

    /// <summary>Leaves a dead FUSE mount at <paramref name="mountPoint"/>: mounts with a fresh /dev/fuse fd and closes
    /// it unserved, which aborts the connection exactly as a server's death does.</summary>
    public static void MountDeadFuse(string mountPoint)
    {
        int fd = Open("/dev/fuse", 0x2 | 0x80000, 0);
        Assert.True(fd >= 0, $"open /dev/fuse: errno {Marshal.GetLastPInvokeError()}");
        try
        {
            int result = Mount("dead", mountPoint, "fuse.blockdriver", 0x2 | 0x4, $"fd={fd},rootmode=40000,user_id=0,group_id=0");
            Assert.True(result == 0, $"mount: errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Mount(string source, string target, string type, ulong flags, string data);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);
}
