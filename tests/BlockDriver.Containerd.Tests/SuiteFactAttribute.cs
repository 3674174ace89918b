namespace BlockDriver.Containerd.Tests;

/// <summary>A fact that needs what containerd's testsuite runner needs (see <see cref="SuiteRequirements"/>): skipped with
/// the reason outside CI on a machine without it, failing with it under <c>CI=true</c>.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class SuiteFactAttribute : FactAttribute
{
    public SuiteFactAttribute() => Skip = SuiteRequirements.SkipReason();
}
