using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests.Support;

/// <summary>Sends the server's log to the test's output (Debug and up), so a failing test shows what the server
/// saw. Writes after the test ended are dropped (xunit throws for them).</summary>
public sealed class TestOutputLogger<T> : ILogger<T>
{
    private readonly ITestOutputHelper _output;
    private volatile bool _closed;

    public TestOutputLogger(ITestOutputHelper output)
    {
        _output = output;
    }

    public void Close() => _closed = true;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (_closed || !IsEnabled(logLevel))
        {
            return;
        }

        try
        {
            _output.WriteLine($"[{logLevel}] {formatter(state, exception)}{(exception is null ? "" : " | " + exception.GetType().Name + ": " + exception.Message)}");
        }
        catch (InvalidOperationException)
        {
            // The test finished while a connection was still closing; its output is sealed.
            _closed = true;
        }
    }
}
