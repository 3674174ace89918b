using BlockDriver.Abstractions;

namespace BlockDriver.Mount.Tar;

/// <summary>An open directory (O_PATH) inside a layer root, reached with openat2(RESOLVE_IN_ROOT) so that no path a
/// tar names, and no symbolic link in the tree, can lead outside the root. Owns the descriptor.</summary>
internal sealed class DirectoryHandle : IDisposable
{
    private DirectoryHandle(int fd, string path)
    {
        Fd = fd;
        Path = path;
    }

    /// <summary>The descriptor, for *at calls.</summary>
    public int Fd { get; private set; }

    /// <summary>The path relative to the root ("" for the root), for messages.</summary>
    public string Path { get; }

    /// <summary>A path that names an entry of this directory for calls that only take paths (xattrs): through
    /// /proc/self/fd, whose magic link is this very directory, whatever happens to its name.</summary>
    public string ProcPath(string name) => $"/proc/self/fd/{Fd}/{name}";

    /// <summary>Opens the layer root itself.</summary>
    public static DirectoryHandle OpenRoot(string root)
    {
        int fd = FsNative.Open(root, FsNative.OPath | FsNative.ODirectory | FsNative.OCloExec, 0);
        if (fd < 0)
        {
            throw new BlockDriverException(ErrorKind.NotFound, $"{root}: cannot open the layer root: {FsNative.Describe(FsNative.LastError)}.");
        }

        return new DirectoryHandle(fd, "");
    }

    /// <summary>Opens directory <paramref name="relative"/> (components separated by '/') below
    /// <paramref name="root"/>, resolved as if the root were "/"; with <paramref name="create"/>, missing
    /// components are made (mode 0755, as Docker does for parents a tar does not list). Returns null when it does
    /// not exist and is not to be created.</summary>
    public static DirectoryHandle? Open(DirectoryHandle root, string relative, bool create)
    {
        if (relative.Length == 0)
        {
            return Reopen(root, ".", "");
        }

        int fd = FsNative.Openat2(root.Fd, relative, FsNative.OPath | FsNative.ODirectory | FsNative.OCloExec,
            FsNative.ResolveInRoot | FsNative.ResolveNoMagicLinks);
        if (fd >= 0)
        {
            return new DirectoryHandle(fd, relative);
        }

        int errno = FsNative.LastError;
        if (errno != FsNative.ENOENT || !create)
        {
            return errno == FsNative.ENOENT ? null
                : throw new IOException($"{relative}: cannot open the directory in the layer: {FsNative.Describe(errno)}.");
        }

        // Make the missing components one at a time, each inside the directory opened before it.
        DirectoryHandle current = Reopen(root, ".", "")!;
        string path = "";
        foreach (string component in relative.Split('/'))
        {
            path = path.Length == 0 ? component : path + "/" + component;
            if (FsNative.Mkdirat(current.Fd, component, 0x1ED /* 0755 */) != 0 && FsNative.LastError != FsNative.EEXIST)
            {
                int error = FsNative.LastError;
                current.Dispose();
                throw new IOException($"{path}: cannot create the directory in the layer: {FsNative.Describe(error)}.");
            }

            DirectoryHandle? next = Open(root, path, create: false);
            current.Dispose();
            current = next ?? throw new IOException($"{path}: created but cannot be opened as a directory.");
        }

        return current;
    }

    /// <summary>Opens an entry of this directory as a directory (not following a symbolic link), readable so that
    /// its entries can be listed; null when it is not a directory.</summary>
    public DirectoryHandle? OpenChild(string name)
    {
        int fd = FsNative.Openat(Fd, name, FsNative.ORdOnly | FsNative.ODirectory | FsNative.ONoFollow | FsNative.OCloExec, 0);
        return fd < 0 ? null : new DirectoryHandle(fd, Path.Length == 0 ? name : Path + "/" + name);
    }

    /// <summary>The names in this directory (not "." or "..").</summary>
    public IEnumerable<string> Names()
    {
        // A readable descriptor of the directory itself, listed through its /proc magic link.
        int fd = FsNative.Openat(Fd, ".", FsNative.ORdOnly | FsNative.ODirectory | FsNative.OCloExec, 0);
        if (fd < 0)
        {
            throw new IOException($"{Path}: cannot list the directory: {FsNative.Describe(FsNative.LastError)}.");
        }

        try
        {
            return [.. Directory.EnumerateFileSystemEntries($"/proc/self/fd/{fd}").Select(System.IO.Path.GetFileName).OfType<string>()];
        }
        finally
        {
            FsNative.Close(fd);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Fd >= 0)
        {
            FsNative.Close(Fd);
            Fd = -1;
        }
    }

    private static DirectoryHandle Reopen(DirectoryHandle directory, string name, string path)
    {
        int fd = FsNative.Openat(directory.Fd, name, FsNative.OPath | FsNative.ODirectory | FsNative.OCloExec, 0);
        return fd < 0 ? throw new IOException($"cannot reopen the layer root: {FsNative.Describe(FsNative.LastError)}.") : new DirectoryHandle(fd, path);
    }
}
