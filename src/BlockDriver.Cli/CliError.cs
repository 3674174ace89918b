using BlockDriver.Abstractions;

namespace BlockDriver.Cli;

/// <summary>The CLI's one translation of exceptions into what a user reads: a single line on stderr, never a stack
/// trace. Library failures (<see cref="BlockDriverException"/>, including <c>VhdxFormatException</c>) and I/O errors
/// already name the file and the problem, so their message is printed as is.</summary>
internal static class CliError
{
    /// <summary>The prefix of every error line.</summary>
    public const string Prefix = "blockdriver: error: ";

    /// <summary>Writes <paramref name="message"/> as one error line on stderr.</summary>
    public static void Write(string message) => Console.Error.WriteLine(Prefix + OneLine(message));

    /// <summary>Describes <paramref name="exception"/> in one line.</summary>
    public static string Describe(Exception exception) => exception switch
    {
        BlockDriverException or IOException or UnauthorizedAccessException => exception.Message,

        // VhdxDisk.DisposeAsync gathers the failures of closing each file of a chain.
        AggregateException aggregate => string.Join("; ", aggregate.Flatten().InnerExceptions.Select(Describe)),

        // The library checks ranges and lengths with ArgumentException; reaching one here means the CLI passed
        // something it should have refused itself, and the message still says what.
        ArgumentException => exception.Message,
        _ => $"internal error ({exception.GetType().Name}): {exception.Message}",
    };

    // Line breaks and tabs (System.CommandLine puts both in some messages) become single spaces.
    private static string OneLine(string message) =>
        string.Join(' ', message.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
}
