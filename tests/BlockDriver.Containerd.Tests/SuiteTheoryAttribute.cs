namespace BlockDriver.Containerd.Tests;

/// <summary>A theory that needs what containerd's testsuite runner needs (see <see cref="SuiteRequirements"/>): skipped
/// with the reason outside CI on a machine without it, failing with it under <c>CI=true</c>.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class SuiteTheoryAttribute : TheoryAttribute
{
    public SuiteTheoryAttribute() => Skip = SuiteRequirements.SkipReason();
}
