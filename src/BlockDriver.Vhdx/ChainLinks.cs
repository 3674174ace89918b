using BlockDriver.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Vhdx;

/// <summary>How a differencing file finds and trusts its parent: locator resolution (MS-VHDX 2.6.2.6), the link
/// checks, loops and the depth limit. <see cref="VhdxDisk"/> and <see cref="VhdxChain"/> both open chains with it,
/// so that every way of opening a chain refuses the same things with the same messages.</summary>
internal static class ChainLinks
{
    /// <summary>Opens the parents of <paramref name="child"/> (already open, at <paramref name="childPath"/>) one by
    /// one, read-only, appending each to <paramref name="files"/> once its link to the file below is checked.
    /// <paramref name="seen"/> holds the canonical paths of every file open above and grows with each parent;
    /// <paramref name="filesAbove"/> files of the whole chain that are not in <paramref name="files"/> (a disk's top
    /// file) count against <see cref="VhdxOpenOptions.MaxChainDepth"/> of <paramref name="options"/>, and
    /// <paramref name="topPath"/>, what the caller asked to open, is named when the chain is too deep.</summary>
    /// <remarks>On failure the files already appended stay in <paramref name="files"/>; the caller closes them.</remarks>
    public static void OpenParents(VhdxFile child, string childPath, string topPath, VhdxOpenOptions options,
        List<VhdxFile> files, HashSet<string> seen, int filesAbove)
    {
        VhdxFile file = child;
        string current = childPath;
        while (file.HasParent)
        {
            string parentPath = NextParent(file, current, topPath, options, seen, filesAbove + files.Count);
            VhdxFile parent = VhdxFile.Open(parentPath, readOnly: true, options.ParentRoot);
            files.Add(parent);
            CheckLink(file, current, parent, parentPath);
            file = parent;
            current = parentPath;
        }
    }

    /// <summary>Finds the parent of <paramref name="file"/> for a chain that already holds
    /// <paramref name="filesSoFar"/> files, refusing a chain that would grow too deep or loop.</summary>
    public static string NextParent(VhdxFile file, string filePath, string topPath, VhdxOpenOptions options,
        HashSet<string> seen, int filesSoFar)
    {
        if (filesSoFar >= options.MaxChainDepth)
        {
            throw new BlockDriverException(ErrorKind.Corrupt, $"{topPath}: the chain is deeper than {options.MaxChainDepth} files.");
        }

        string parentPath = ResolveParent(file, filePath, options.ParentRoot);
        if (!seen.Add(CanonicalPath(parentPath)))
        {
            throw new BlockDriverException(ErrorKind.Corrupt, $"{filePath}: parent {parentPath} is already in the chain (a loop).");
        }

        return parentPath;
    }

    /// <summary>See <see cref="VhdxDisk.ResolveParent"/>.</summary>
    public static string ResolveParent(VhdxFile child, string childPath, string? parentRoot)
    {
        ParentLocator locator = child.ParentLocator ?? throw new InvalidOperationException($"{childPath} has no parent.");
        string directory = Path.GetDirectoryName(Path.GetFullPath(childPath))!;
        string? root = parentRoot is null ? null : Path.TrimEndingDirectorySeparator(Path.GetFullPath(parentRoot));
        string? realRoot = root is null ? null : RealPath(root);
        var tried = new List<string>();
        bool outside = false;
        foreach ((string key, string stored) in locator.CandidatePaths())
        {
            if (stored.StartsWith(@"\\", StringComparison.Ordinal))
            {
                // \\?\Volume{…}\ and \\server\share\ name Windows volumes and shares, never a path here.
                tried.Add($"{key}={stored} (a Windows volume or share path)");
                continue;
            }

            string candidate = stored.Replace('\\', '/');
            if (key == ParentLocator.RelativePathKey)
            {
                if (Path.IsPathRooted(candidate))
                {
                    throw new VhdxFormatException(childPath, "parent locator", -1, $"relative_path \"{stored}\" is absolute.");
                }

                candidate = Path.GetFullPath(Path.Combine(directory, candidate));
            }
            else if (!Path.IsPathRooted(candidate))
            {
                tried.Add($"{key}={stored} (not a path on this system)");
                continue;
            }

            candidate = Path.GetFullPath(candidate);
            if (realRoot is not null && !IsInside(RealPath(candidate), realRoot))
            {
                // With symbolic links resolved (a link inside the root may point anywhere). Nothing is said of what
                // lies outside, not even whether it exists: the locator is the file's content, the host is not.
                tried.Add($"{key}={stored} (not inside {root})");
                outside = true;
                continue;
            }

            if (File.Exists(candidate))
            {
                return candidate;
            }

            tried.Add($"{key}={stored} ({candidate})");
        }

        if (outside)
        {
            throw new VhdxFormatException(childPath, "parent locator", -1, $"no parent inside {root}, the only directory parents are followed in; tried {string.Join(", ", tried)}.");
        }

        throw new BlockDriverException(ErrorKind.NotFound, $"{childPath}: parent not found; tried {string.Join(", ", tried)}.");
    }

    /// <summary>What realpath(3) gives for <paramref name="path"/>, also for a path that does not exist: symbolic
    /// links followed (at most 40, as Linux does), "." and ".." applied to the resolved path; from the first
    /// component that does not exist on, the rest is kept as written.</summary>
    /// <exception cref="BlockDriverException">InvalidArgument: too many levels of symbolic links.</exception>
    public static string RealPath(string path)
    {
        var pending = new Stack<string>();
        // Not Path.GetFullPath: it applies ".." before links are resolved (a/link/.. is a, not link's parent).
        Push(pending, Path.IsPathRooted(path) ? path : Path.Join(Environment.CurrentDirectory, path));
        string resolved = "/";
        bool missing = false;
        int links = 0;
        while (pending.TryPop(out string? part))
        {
            if (part is "" or ".")
            {
                continue;
            }

            if (part == "..")
            {
                resolved = Path.GetDirectoryName(resolved) ?? "/";
                continue;
            }

            string next = Path.Join(resolved, part);
            if (!missing)
            {
                string? target = LinkTarget(next);
                if (target is not null)
                {
                    if (++links > 40)
                    {
                        throw new BlockDriverException(ErrorKind.InvalidArgument, $"{path}: too many levels of symbolic links.");
                    }

                    Push(pending, target);
                    if (Path.IsPathRooted(target))
                    {
                        resolved = "/";
                    }

                    continue;
                }

                missing = !File.Exists(next) && !Directory.Exists(next);
            }

            resolved = next;
        }

        return resolved;

        static void Push(Stack<string> stack, string path)
        {
            string[] parts = path.Split('/');
            for (int i = parts.Length - 1; i >= 0; i--)
            {
                stack.Push(parts[i]);
            }
        }

        static string? LinkTarget(string path)
        {
            try
            {
                return new FileInfo(path).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Not a link we can read (no permission on its directory): taken as written, and the containment
                // check decides on that.
                return null;
            }
        }
    }

    /// <summary>Refuses an open handle whose file (as the kernel names it, /proc/self/fd) is not inside
    /// <paramref name="parentRoot"/>: the path was checked when the locator was resolved, but a directory or link on
    /// the way may have been swapped since.</summary>
    /// <exception cref="VhdxFormatException">The file is not inside the root.</exception>
    public static void CheckOpenedInside(SafeFileHandle handle, string path, string parentRoot)
    {
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(parentRoot));
        string? opened = new FileInfo($"/proc/self/fd/{handle.DangerousGetHandle()}").LinkTarget;
        if (opened is null || !IsInside(opened, RealPath(root)))
        {
            throw new VhdxFormatException(path, "parent locator", -1, $"the parent opened is not inside {root}, the only directory parents are followed in (it changed while it was opened).");
        }
    }

    /// <summary>True when <paramref name="realPath"/> lies strictly below <paramref name="realRoot"/> (both
    /// resolved by <see cref="RealPath"/>).</summary>
    public static bool IsInside(string realPath, string realRoot) =>
        realRoot == "/" ? realPath != "/" : realPath.StartsWith(realRoot + "/", StringComparison.Ordinal);

    /// <summary>Refuses a parent whose DataWriteGuid is not the child's <c>parent_linkage</c> (or
    /// <c>parent_linkage2</c>), or whose sector size or virtual size differ from the child's.</summary>
    /// <exception cref="BlockDriverException">Corrupt.</exception>
    public static void CheckLink(VhdxFile child, string childPath, VhdxFile parent, string parentPath)
    {
        ParentLocator locator = child.ParentLocator!;
        if (parent.DataWriteGuid != locator.Linkage && parent.DataWriteGuid != locator.Linkage2)
        {
            throw new BlockDriverException(ErrorKind.Corrupt,
                $"{childPath}: parent {parentPath} has changed since the child was made (its DataWriteGuid is {parent.DataWriteGuid:B}, the child's parent_linkage is {locator.Linkage:B}); reading the chain would show wrong data.");
        }

        if (parent.LogicalSectorSize != child.LogicalSectorSize || parent.VirtualSize != child.VirtualSize)
        {
            throw new BlockDriverException(ErrorKind.Corrupt,
                $"{childPath}: parent {parentPath} has {parent.VirtualSize} bytes in {parent.LogicalSectorSize}-byte sectors, the child {child.VirtualSize} in {child.LogicalSectorSize}-byte sectors.");
        }
    }

    /// <summary>The absolute path with symbolic links resolved: two names of one file compare equal.</summary>
    public static string CanonicalPath(string path)
    {
        string full = Path.GetFullPath(path);
        FileSystemInfo? target = File.ResolveLinkTarget(full, returnFinalTarget: true);
        return target?.FullName ?? full;
    }

    /// <summary>Closes every file, even when some fail; the failures are thrown together afterwards.</summary>
    /// <exception cref="AggregateException">Closing one or more files failed.</exception>
    public static async ValueTask CloseAllAsync(IEnumerable<VhdxFile> files)
    {
        List<Exception>? errors = null;
        foreach (VhdxFile file in files)
        {
            try
            {
                await file.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or BlockDriverException)
            {
                (errors ??= []).Add(e);
            }
        }

        if (errors is not null)
        {
            throw new AggregateException("Closing the VHDX chain failed.", errors);
        }
    }
}
