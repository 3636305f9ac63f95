"""Catalog files for the unit tests that write their own."""


def write_catalog(path, entries):
    """A catalog file from {model: {key: value}} (values written as YAML flow)."""
    lines = ["version: 1", "models:"]
    for model, settings in entries.items():
        lines.append(f"  {model}:")
        lines += [f"    {key}: {value}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
