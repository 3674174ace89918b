using System.Formats.Tar;
using System.Text;
using BlockDriver.Abstractions;

namespace BlockDriver.Mount.Tar;

/// <summary>Applies a Docker/OCI layer tar to a directory (a mounted layer): files, directories, symbolic and hard
/// links, device nodes and FIFOs with their owners, modes, times and extended attributes; <c>.wh.NAME</c> deletes
/// NAME and <c>.wh..wh..opq</c> empties a directory of what lower layers put there.</summary>
/// <remarks>
/// <para>A hostile tar cannot touch anything outside the root: names are cleaned and one that climbs out is
/// refused; every directory is opened with openat2(RESOLVE_IN_ROOT), so a symbolic link in the tree (planted by an
/// earlier entry or a lower layer) resolves inside the root; the final name is created with O_NOFOLLOW/O_EXCL and
/// *at calls that do not follow links; a hard link's target is looked up the same way.</para>
/// <para>Runs as root (owners and device nodes need it). Not thread-safe; one tar at a time per root.</para>
/// </remarks>
public static class LayerTarApplier
{
    /// <summary>Applies <paramref name="tar"/> to the directory <paramref name="root"/> and returns the bytes of
    /// file content written (what Docker's ApplyDiff reports as the layer's size).</summary>
    /// <exception cref="BlockDriverException">InvalidArgument for an entry that escapes the root or a malformed
    /// tar; the entries before it stay applied (the caller discards the layer).</exception>
    public static async Task<long> ApplyAsync(Stream tar, string root, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(tar);
        using DirectoryHandle rootHandle = DirectoryHandle.OpenRoot(root);
        var unpacked = new HashSet<string>(StringComparer.Ordinal);
        var directoryTimes = new List<(string Path, DateTimeOffset Mtime)>();
        long written = 0;
        var counted = new CountingReadStream(tar);
        var reader = new TarReader(counted, leaveOpen: true);
        await using (reader.ConfigureAwait(false))
        {
            while (true)
            {
                TarEntry? entry;
                try
                {
                    entry = await reader.GetNextEntryAsync(copyData: false, ct).ConfigureAwait(false);
                }
                catch (EndOfStreamException) when (counted.BytesRead == 0)
                {
                    // No bytes at all is an empty archive, as Go's archive/tar reads it (dockerd may pass one on).
                    break;
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
                {
                    throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: malformed ({e.Message}).", e);
                }

                if (entry is null)
                {
                    break;
                }

                written += await ApplyEntryAsync(rootHandle, entry, unpacked, directoryTimes, ct).ConfigureAwait(false);
            }
        }

        // Directory times last: creating their entries changed them.
        for (int i = directoryTimes.Count - 1; i >= 0; i--)
        {
            (string path, DateTimeOffset mtime) = directoryTimes[i];
            (string directory, string name) = TarPaths.Split(path);
            using DirectoryHandle? parent = DirectoryHandle.Open(rootHandle, directory, create: false);
            if (parent is not null)
            {
                SetTimes(parent, name.Length == 0 ? "." : name, mtime);
            }
        }

        return written;
    }

    private static async Task<long> ApplyEntryAsync(DirectoryHandle root, TarEntry entry, HashSet<string> unpacked,
        List<(string, DateTimeOffset)> directoryTimes, CancellationToken ct)
    {
        string path = TarPaths.Clean(entry.Name);
        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes)
        {
            return 0;
        }

        if (path.Length == 0)
        {
            // The root itself ("./"): only its times, as Docker does.
            if (entry.EntryType == TarEntryType.Directory)
            {
                directoryTimes.Add(("", entry.ModificationTime));
            }

            return 0;
        }

        (string directory, string name) = TarPaths.Split(path);
        if (name.StartsWith(TarPaths.WhiteoutPrefix, StringComparison.Ordinal))
        {
            ApplyWhiteout(root, directory, name, unpacked);
            return 0;
        }

        using DirectoryHandle parent = DirectoryHandle.Open(root, directory, create: true)!;
        FileStat? existing = FileStat.At(parent.Fd, name);
        if (existing is { } e && !(e.IsDirectory && entry.EntryType == TarEntryType.Directory))
        {
            RemoveTree(parent, name);
        }

        long written = 0;
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                if (existing is not { IsDirectory: true })
                {
                    Check(FsNative.Mkdirat(parent.Fd, name, 0x1C0 /* 0700 */), path, "mkdir");
                }

                directoryTimes.Add((path, entry.ModificationTime));
                break;

            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                written = await WriteFileAsync(parent, name, path, entry, ct).ConfigureAwait(false);
                break;

            case TarEntryType.SymbolicLink:
                // The target text is stored as is: it is resolved inside the container at run time, and every
                // later entry of this tar is opened in-root, so a link pointing out leads nowhere outside.
                Check(FsNative.Symlinkat(entry.LinkName, parent.Fd, name), path, "symlink");
                break;

            case TarEntryType.HardLink:
                string target = TarPaths.Clean(entry.LinkName);
                (string targetDirectory, string targetName) = TarPaths.Split(target);
                using (DirectoryHandle? targetParent = DirectoryHandle.Open(root, targetDirectory, create: false))
                {
                    if (targetParent is null || target.Length == 0 || FileStat.At(targetParent.Fd, targetName) is not { IsDirectory: false })
                    {
                        throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: hard link {path} -> {entry.LinkName}: no such file in the layer.");
                    }

                    Check(FsNative.Linkat(targetParent.Fd, targetName, parent.Fd, name, 0), path, "link");
                }

                unpacked.Add(path);
                return 0;

            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                uint type = entry.EntryType switch
                {
                    TarEntryType.CharacterDevice => FsNative.SIfChr,
                    TarEntryType.BlockDevice => FsNative.SIfBlk,
                    _ => FsNative.SIfIfo,
                };
                var posix = (PosixTarEntry)entry;
                ulong device = type == FsNative.SIfIfo ? 0 : FsNative.MakeDev((uint)posix.DeviceMajor, (uint)posix.DeviceMinor);
                Check(FsNative.Mknodat(parent.Fd, name, type | 0x180 /* 0600 */, device), path, "mknod");
                break;

            default:
                // Sparse, multi-volume and other exotic GNU types: not in layer tars; skipped like Docker does.
                return 0;
        }

        SetOwnerAndMode(parent, name, path, entry);
        SetExtendedAttributes(parent, name, path, entry);
        if (entry.EntryType != TarEntryType.Directory)
        {
            SetTimes(parent, name, entry.ModificationTime);
        }

        unpacked.Add(path);
        return written;
    }

    private static async Task<long> WriteFileAsync(DirectoryHandle parent, string name, string path, TarEntry entry, CancellationToken ct)
    {
        int fd = FsNative.Openat(parent.Fd, name, FsNative.OWrOnly | FsNative.OCreat | FsNative.OExcl | FsNative.ONoFollow | FsNative.OCloExec, 0x180 /* 0600 */);
        Check(fd < 0 ? -1 : 0, path, "create");
        using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        using var file = new FileStream(handle, FileAccess.Write, bufferSize: 0);
        if (entry.DataStream is { } data)
        {
            await data.CopyToAsync(file, 1 << 20, ct).ConfigureAwait(false);
        }

        return entry.Length;
    }

    private static void ApplyWhiteout(DirectoryHandle root, string directory, string name, HashSet<string> unpacked)
    {
        using DirectoryHandle? parent = DirectoryHandle.Open(root, directory, create: false);
        if (parent is null)
        {
            return;
        }

        if (name == TarPaths.OpaqueMarker)
        {
            // Hide what lower layers had here, but keep what this tar has already put in the directory.
            foreach (string child in parent.Names())
            {
                string childPath = directory.Length == 0 ? child : directory + "/" + child;
                if (!unpacked.Contains(childPath))
                {
                    RemoveTree(parent, child);
                }
            }

            return;
        }

        if (name.StartsWith(TarPaths.WhiteoutPrefix + TarPaths.WhiteoutPrefix, StringComparison.Ordinal))
        {
            return; // other AUFS metadata (.wh..wh.plnk, ...): not a deletion.
        }

        string victim = name[TarPaths.WhiteoutPrefix.Length..];
        if (victim is "" or "." or "..")
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: whiteout \"{name}\" in \"{directory}\" names no file.");
        }

        RemoveTree(parent, victim);
    }

    // Deletes an entry of a directory and, for a directory, everything below it, never following a symbolic link.
    private static void RemoveTree(DirectoryHandle parent, string name)
    {
        FileStat? stat = FileStat.At(parent.Fd, name);
        if (stat is null)
        {
            return;
        }

        if (stat.Value.IsDirectory)
        {
            using (DirectoryHandle? child = parent.OpenChild(name))
            {
                if (child is not null)
                {
                    foreach (string grandchild in child.Names())
                    {
                        RemoveTree(child, grandchild);
                    }
                }
            }

            Check(FsNative.Unlinkat(parent.Fd, name, FsNative.AtRemoveDir), name, "rmdir");
        }
        else
        {
            Check(FsNative.Unlinkat(parent.Fd, name, 0), name, "unlink");
        }
    }

    private static void SetOwnerAndMode(DirectoryHandle parent, string name, string path, TarEntry entry)
    {
        Check(FsNative.Fchownat(parent.Fd, name, entry.Uid, entry.Gid, FsNative.AtSymlinkNoFollow), path, "chown");
        if (entry.EntryType != TarEntryType.SymbolicLink)
        {
            // After chown, which clears set-uid/set-gid bits.
            Check(FsNative.Fchmodat(parent.Fd, name, (uint)entry.Mode & 0xFFF /* 07777 */, 0), path, "chmod");
        }

    }

    private static unsafe void SetExtendedAttributes(DirectoryHandle parent, string name, string path, TarEntry entry)
    {
        if (entry is not PaxTarEntry pax)
        {
            return;
        }

        foreach ((string key, string value) in pax.ExtendedAttributes)
        {
            const string Prefix = "SCHILY.xattr.";
            if (!key.StartsWith(Prefix, StringComparison.Ordinal))
            {
                continue;
            }

            string attribute = key[Prefix.Length..];
            // PAX records are UTF-8 text; binary xattr values arrive as the same bytes (Latin-1 round trip keeps
            // them when the writer used it, UTF-8 otherwise).
            byte[] bytes = Encoding.UTF8.GetBytes(value);
            fixed (byte* p = bytes)
            {
                if (FsNative.Lsetxattr(parent.ProcPath(name), attribute, p, (nuint)bytes.Length, 0) != 0)
                {
                    int errno = FsNative.LastError;
                    if (errno != FsNative.ENOTSUP)
                    {
                        throw new IOException($"{path}: setxattr {attribute}: {FsNative.Describe(errno)}.");
                    }
                }
            }
        }
    }

    private static unsafe void SetTimes(DirectoryHandle parent, string name, DateTimeOffset mtime)
    {
        long ticks = mtime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        long seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rest);
        if (rest < 0)
        {
            seconds--;
            rest += TimeSpan.TicksPerSecond;
        }

        var time = new FsNative.Timespec { Seconds = seconds, Nanoseconds = rest * 100 };
        FsNative.Timespec* times = stackalloc FsNative.Timespec[2];
        times[0] = time;
        times[1] = time;
        Check(FsNative.Utimensat(parent.Fd, name, times, FsNative.AtSymlinkNoFollow), name, "utimensat");
    }

    private static void Check(int result, string path, string operation)
    {
        if (result != 0)
        {
            int errno = FsNative.LastError;
            throw new IOException($"{path}: {operation}: {FsNative.Describe(errno)} (errno {errno}).");
        }
    }
}
