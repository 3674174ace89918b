using System.Runtime.InteropServices;

namespace BlockDriver.Cli.Commands.Serve;

/// <summary>A token cancelled by SIGINT (through System.CommandLine's token) or SIGTERM, for the commands that run
/// until told to stop. SIGTERM is caught here so that the process stops cleanly instead of being killed.</summary>
internal sealed class TerminationSignal : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly PosixSignalRegistration _term;

    public TerminationSignal(CancellationToken interrupted)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(interrupted);
        _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            _cts.Cancel();
        });
    }

    public CancellationToken Token => _cts.Token;

    /// <summary>Completes when a signal arrived.</summary>
    public Task WaitAsync() => Task.Delay(Timeout.Infinite, _cts.Token).ContinueWith(_ => { }, TaskScheduler.Default);

    public void Dispose()
    {
        _term.Dispose();
        _cts.Dispose();
    }
}
