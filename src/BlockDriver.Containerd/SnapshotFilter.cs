using System.Text;
using System.Text.RegularExpressions;
using BlockDriver.Abstractions;

namespace BlockDriver.Containerd;

/// <summary>
/// containerd's filter syntax for snapshots, as <c>List</c> (Walk) receives it: a filter is selectors joined by
/// <c>,</c> (all must match); several filters match when any one does; none matches everything.
/// </summary>
/// <remarks>
/// <para>A selector is a field path alone (present and non-empty) or <c>path==value</c>, <c>path!=value</c>,
/// <c>path~=regex</c>. Field paths: <c>name</c>, <c>parent</c>, <c>kind</c> (<c>active</c>, <c>view</c>,
/// <c>committed</c>) and <c>labels.KEY</c>, where path parts and values may be double-quoted with Go escapes
/// (<c>labels."containerd.io/snapshot.ref"==sha256:…</c>) and an unquoted label key may contain dots. A missing
/// label is absent: presence and <c>==</c> fail, <c>!=</c> matches, <c>~=</c> tests the empty string.</para>
/// <para>Anything else (another field, a malformed selector, a bad regular expression) is refused with
/// InvalidArgument, so that a filter never silently matches everything.</para>
/// </remarks>
public sealed class SnapshotFilter
{
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromSeconds(1);
    private readonly List<List<Selector>> _alternatives;

    private SnapshotFilter(List<List<Selector>> alternatives) => _alternatives = alternatives;

    /// <summary>Parses <paramref name="filters"/> (any of them must match; none: all match).</summary>
    /// <exception cref="BlockDriverException">InvalidArgument for a filter that is not understood.</exception>
    public static SnapshotFilter Parse(IEnumerable<string> filters)
    {
        ArgumentNullException.ThrowIfNull(filters);
        var alternatives = new List<List<Selector>>();
        foreach (string filter in filters)
        {
            if (string.IsNullOrWhiteSpace(filter))
            {
                continue;
            }

            alternatives.Add(new Parser(filter).ParseFilter());
        }

        return new SnapshotFilter(alternatives);
    }

    /// <summary>True when <paramref name="info"/> matches.</summary>
    public bool Matches(SnapshotInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        return _alternatives.Count == 0 || _alternatives.Any(selectors => selectors.All(s => s.Matches(info)));
    }

    private enum Operator
    {
        Present,
        Equal,
        NotEqual,
        Matches,
    }

    private sealed record Selector(string Field, string? LabelKey, Operator Op, string Value, Regex? Pattern)
    {
        public bool Matches(SnapshotInfo info)
        {
            string? actual = Field switch
            {
                "name" => info.Name,
                "parent" => info.Parent,
                "kind" => SnapshotLabels.KindName(info.Kind),
                _ => info.Labels.GetValueOrDefault(LabelKey!),
            };
            return Op switch
            {
                Operator.Present => !string.IsNullOrEmpty(actual),
                Operator.Equal => actual is not null && actual == Value,
                Operator.NotEqual => actual != Value,
                _ => Pattern!.IsMatch(actual ?? ""),
            };
        }
    }

    private sealed class Parser(string text)
    {
        private int _pos;

        public List<Selector> ParseFilter()
        {
            var selectors = new List<Selector>();
            while (true)
            {
                selectors.Add(ParseSelector());
                SkipSpaces();
                if (_pos == text.Length)
                {
                    return selectors;
                }

                Expect(',');
            }
        }

        private Selector ParseSelector()
        {
            var path = new List<string> { ParseField() };
            while (Peek() == '.')
            {
                _pos++;
                path.Add(ParseField());
            }

            string field = path[0];
            string? labelKey = null;
            if (field == "labels" && path.Count > 1)
            {
                labelKey = string.Join('.', path.Skip(1));
            }
            else if (path.Count != 1 || field is not ("name" or "parent" or "kind"))
            {
                throw Error($"unknown field {string.Join('.', path)} (known: name, parent, kind, labels.KEY)");
            }

            SkipSpaces();
            if (_pos == text.Length || Peek() == ',')
            {
                return new Selector(field, labelKey, Operator.Present, "", null);
            }

            Operator op = text.AsSpan(_pos).StartsWith("==") ? Operator.Equal
                : text.AsSpan(_pos).StartsWith("!=") ? Operator.NotEqual
                : text.AsSpan(_pos).StartsWith("~=") ? Operator.Matches
                : throw Error("expected ==, != or ~=");
            _pos += 2;
            SkipSpaces();
            string value = ParseValue();
            Regex? pattern = null;
            if (op == Operator.Matches)
            {
                try
                {
                    pattern = new Regex(value, RegexOptions.CultureInvariant, RegexTimeout);
                }
                catch (ArgumentException ex)
                {
                    throw Error($"bad regular expression {value}: {ex.Message}");
                }
            }

            return new Selector(field, labelKey, op, value, pattern);
        }

        private string ParseField()
        {
            SkipSpaces();
            if (Peek() == '"')
            {
                return ParseQuoted();
            }

            int start = _pos;
            while (_pos < text.Length && (char.IsAsciiLetterOrDigit(text[_pos]) || text[_pos] is '_' or '-'))
            {
                _pos++;
            }

            return _pos > start ? text[start.._pos] : throw Error("expected a field name");
        }

        private string ParseValue()
        {
            if (Peek() == '"')
            {
                return ParseQuoted();
            }

            int start = _pos;
            while (_pos < text.Length && text[_pos] != ',')
            {
                _pos++;
            }

            string value = text[start.._pos].TrimEnd();
            return value.Length > 0 ? value : throw Error("expected a value");
        }

        // A Go-style double-quoted string: \" \\ \n \t \r and \/ escapes.
        private string ParseQuoted()
        {
            int start = _pos;
            _pos++;
            var value = new StringBuilder();
            while (_pos < text.Length)
            {
                char c = text[_pos++];
                if (c == '"')
                {
                    return value.ToString();
                }

                if (c != '\\')
                {
                    value.Append(c);
                    continue;
                }

                if (_pos == text.Length)
                {
                    break;
                }

                char escaped = text[_pos++];
                value.Append(escaped switch
                {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '"' or '\\' or '/' => escaped,
                    _ => throw Error($"unknown escape \\{escaped}"),
                });
            }

            _pos = start;
            throw Error("unterminated quoted string");
        }

        private char Peek() => _pos < text.Length ? text[_pos] : '\0';

        private void SkipSpaces()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos]))
            {
                _pos++;
            }
        }

        private void Expect(char c)
        {
            if (Peek() != c)
            {
                throw Error($"expected '{c}'");
            }

            _pos++;
        }

        private BlockDriverException Error(string what) =>
            new(ErrorKind.InvalidArgument, $"filter \"{text}\": {what} at offset {_pos}.");
    }
}
