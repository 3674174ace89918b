using System.CommandLine;
using System.Text.Json;
using BlockDriver.Core;
using BlockDriver.Mount.Tar;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer changes ID [--json]</c>: what a layer changed relative to its parent, one <c>A path</c>,
/// <c>C path</c> or <c>D path</c> line per change, as <c>docker diff</c> prints them.</summary>
internal sealed class LayerChangesCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id("The layer (writable or sealed).");
    private readonly Option<bool> _json = new("--json") { Description = "Print a JSON array of {\"kind\", \"path\"} (shape in README.md)." };

    public LayerChangesCommand()
        : base("changes", "List the files a layer added (A), changed (C) or deleted (D) relative to its parent, like docker diff.")
    {
        Add(_id);
        Add(_json);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        string id = parse.GetValue(_id)!;
        IReadOnlyList<LayerChange> changes;
        ILayerContentService content = LayerContentServices.Open(store);
        await using (content.ConfigureAwait(false))
        {
            changes = await content.ChangesAsync(id, ct).ConfigureAwait(false);
        }

        if (parse.GetValue(_json))
        {
            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                json.WriteStartArray();
                foreach (LayerChange change in changes)
                {
                    json.WriteStartObject();
                    json.WriteString("kind", change.Kind switch { ChangeKind.Added => "added", ChangeKind.Modified => "modified", _ => "deleted" });
                    json.WriteString("path", change.Path);
                    if (!change.IsUtf8)
                    {
                        // JSON cannot hold the bytes of a name that is not UTF-8: they go in base64 beside the text.
                        json.WriteString("pathBase64", Convert.ToBase64String(change.RawPath));
                    }

                    json.WriteEndObject();
                }

                json.WriteEndArray();
            }

            Console.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
        }
        else
        {
            // The path's bytes as the file system has them (as ls and docker diff print them), not a lossy decoding.
            Console.Out.Flush();
            using Stream stdout = Console.OpenStandardOutput();
            var line = new List<byte>();
            foreach (LayerChange change in changes)
            {
                line.Clear();
                line.Add((byte)change.Letter);
                line.Add((byte)' ');
                line.AddRange(change.RawPath);
                line.Add((byte)'\n');
                stdout.Write([.. line]);
            }

            stdout.Flush();
        }

        return ExitCodes.Success;
    }
}
