using Spectre.Console;

namespace BlockDriver.Cli.Output;

/// <summary>Sets a Spectre.Console progress task's value synchronously (unlike <see cref="Progress{T}"/>, which
/// posts reports to the thread pool and may deliver them out of order). <see cref="ProgressTask"/> is
/// thread-safe.</summary>
internal sealed class ProgressTaskReporter(ProgressTask task) : IProgress<long>
{
    /// <inheritdoc/>
    public void Report(long value) => task.Value = value;
}
