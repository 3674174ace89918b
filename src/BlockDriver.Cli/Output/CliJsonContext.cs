using System.Text.Json.Serialization;

namespace BlockDriver.Cli.Output;

/// <summary>Source-generated JSON for the CLI's <c>--json</c> outputs: camelCase, indented, nulls written so that
/// every key is always present.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(ImageInfo))]
[JsonSerializable(typeof(List<MapEntry>))]
[JsonSerializable(typeof(LayerJson))]
[JsonSerializable(typeof(List<LayerJson>))]
[JsonSerializable(typeof(DfJson))]
[JsonSerializable(typeof(BlockDriver.Core.CapacityPlan))]
[JsonSerializable(typeof(List<ReconcileJson>))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
