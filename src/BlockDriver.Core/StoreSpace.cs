using BlockDriver.Abstractions;
using Microsoft.Data.Sqlite;

namespace BlockDriver.Core;

/// <summary>Recognises a full store file system in the exceptions the layers' files and the catalog throw, and
/// describes the free space for an error message.</summary>
internal static class StoreSpace
{
    private const int Enospc = 28;
    private const int Edquot = 122;

    // SQLITE_FULL: "Insertion failed because database is full" (the disk is).
    private const int SqliteFull = 13;

    /// <summary>True when <paramref name="exception"/> or one it wraps failed for want of space: ENOSPC or EDQUOT
    /// (.NET puts the errno in an IOException's HResult on Unix), SQLITE_FULL, or a NoSpace error.</summary>
    public static bool IsNoSpace(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            if (e is IOException { HResult: var h } && (h & 0xFFFF) is Enospc or Edquot
                || e is SqliteException { SqliteErrorCode: SqliteFull }
                || e is BlockDriverException { Kind: ErrorKind.NoSpace })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>"DIR: N bytes available, M free" for the file system holding <paramref name="directory"/>, as df and
    /// statfs(2) count them: available to unprivileged users (f_bavail), free including root's reserve (f_bfree).</summary>
    public static string Describe(string directory)
    {
        try
        {
            var drive = new DriveInfo(directory);
            return $"{directory}: {drive.AvailableFreeSpace} bytes available, {drive.TotalFreeSpace} free";
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return $"{directory}: free space unknown ({e.Message})";
        }
    }
}
