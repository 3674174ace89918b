using Spectre.Console;

namespace BlockDriver.Cli.Output;

/// <summary>A progress bar for long operations when stdout is a terminal; nothing at all when it is redirected
/// (a pipe, a file, a test), so that scripts see only the command's result.</summary>
internal static class ProgressDisplay
{
    /// <summary>Runs <paramref name="work"/>, which reports its position in [0, <paramref name="total"/>] bytes to
    /// the progress it is given (null when quiet). The bar disappears when the work ends.</summary>
    public static async Task<T> RunAsync<T>(string description, long total, Func<IProgress<long>?, Task<T>> work)
    {
        if (Console.IsOutputRedirected || total <= 0)
        {
            return await work(null).ConfigureAwait(false);
        }

        T result = default!;
        await AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                ProgressTask task = context.AddTask(description, maxValue: total);
                result = await work(new ProgressTaskReporter(task)).ConfigureAwait(false);
                task.Value = total;
            })
            .ConfigureAwait(false);
        return result;
    }
}
