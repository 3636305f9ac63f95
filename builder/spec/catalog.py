"""The model catalog (models/models.yml): load it, validate every entry, report every problem.

The catalog replaces the ``MODEL_SPECS`` dict users used to edit in ``build_engine.py``.
Validation is strict and complete: one run lists every problem found, each naming the
file, the model, the key and the fix, so a user repairs the catalog in one go.
"""

import collections
import os
import re

import yaml

from .. import graphsums
from ..atomic import file_sha256
from ..errors import UserError
from ..platform.detect import ONNX_FROM_TEXT
from ..spec.suggest import did_you_mean

CATALOG_VERSION = 1
TOP_LEVEL_KEYS = ("version", "models")
README_HINT = "see models/README.md"

# Model names and engine file names become path components on the device and in the store.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}\Z")
# PyYAML follows YAML 1.1, where "1e-8" (no dot) is a string, not a float. Accept such
# strings for float keys so that the catalog behaves as users expect.
FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

DEFAULT_VARIANCE = [0.1, 0.1, 0.2, 0.2]
# A key the builder derives from the graph (the anchor settings from its anchor tensor:
# builder/graph/anchors.py); a value written instead must agree with the graph.
AUTO = "auto"


class Problem(collections.namedtuple("Problem", "file model key message line")):
    """One catalog problem. ``message`` is "<problem>. <what to do>"; model/key/line may be None."""

    def render(self):
        where = self.file if self.line is None else "{}:{}".format(self.file, self.line)
        parts = []
        if self.model is not None:
            parts.append("model '{}'".format(self.model))
        if self.key is not None:
            parts.append("key '{}'".format(self.key))
        if parts:
            return "{}: {}: {}".format(where, ", ".join(parts), self.message)
        return "{}: {}".format(where, self.message)

    def as_dict(self):
        return {
            "file": self.file,
            "model": self.model,
            "key": self.key,
            "line": self.line,
            "message": self.message,
            "text": self.render(),
        }


class CatalogError(UserError):
    """Every problem found in a catalog; ``.problems`` keeps them structured (for --json)."""

    def __init__(self, problems):
        self.problems = list(problems)
        lines = [problem.render() for problem in self.problems]
        if len(lines) == 1:
            text = lines[0]
        else:
            text = "{} problems in the model catalog:\n  {}".format(len(lines), "\n  ".join(lines))
        super(CatalogError, self).__init__(text)


class _Invalid(Exception):
    """Raised by a field check: what is wrong, and what to do."""

    def __init__(self, problem, fix):
        super(_Invalid, self).__init__(problem)
        self.problem = problem
        self.fix = fix

    @property
    def message(self):
        return "{}. {}".format(self.problem, self.fix)


# ---------------------------------------------------------------- value checks

def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _as_float(value, key):
    if isinstance(value, bool):
        raise _Invalid("expected a number, got {!r}".format(value), "Write a number, e.g. 0.5")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and FLOAT_TEXT.match(value.strip()):
        return float(value)
    raise _Invalid(
        "expected a number, got {!r}".format(value),
        "Write a number for '{}', e.g. 0.5".format(key),
    )


def _as_int(value, key, minimum):
    if not _is_int(value):
        raise _Invalid(
            "expected a whole number, got {!r}".format(value),
            "Write an integer >= {} for '{}'".format(minimum, key),
        )
    if value < minimum:
        raise _Invalid(
            "{} is below the minimum {}".format(value, minimum),
            "Write an integer >= {}".format(minimum),
        )
    return value


def _check_fraction(value, key):
    """A threshold in (0, 1]."""
    number = _as_float(value, key)
    if not 0.0 < number <= 1.0:
        raise _Invalid(
            "{} is outside (0, 1]".format(number),
            "Use a value greater than 0 and at most 1",
        )
    return number


def _check_scale(value, key):
    """'auto' or an anchor scale in (0, 1] (cross-checked min < max later)."""
    if value == AUTO:
        return value
    number = _as_float(value, key)
    if not 0.0 < number <= 1.0:
        raise _Invalid(
            "{} is outside (0, 1]".format(number),
            "Write 'auto' (the builder reads it from the graph's anchors) or the model's "
            "ssd_anchor_generator.{} ({})".format(
                "min_scale" if key == "min_size" else "max_scale", README_HINT
            ),
        )
    return number


def _check_num_classes(value, key):
    if value == "auto":
        return value
    if not _is_int(value) or value < 2:
        raise _Invalid(
            "expected an integer >= 2 or 'auto', got {!r}".format(value),
            "Count the background class too (COCO: 90 + 1 = 91), or write 'auto' to take it "
            "from the graph",
        )
    return value


def _check_input_order(value, key):
    if value == "auto":
        return value
    if (
        isinstance(value, list)
        and len(value) == 3
        and all(_is_int(item) for item in value)
        and sorted(value) == [0, 1, 2]
    ):
        return list(value)
    raise _Invalid(
        "expected 'auto' or a permutation of 0, 1, 2 such as [1, 0, 2], got {!r}".format(value),
        "Write 'auto' (recommended: the builder derives it from the graph)",
    )


def _check_input_dims(value, key):
    if value == "auto":
        return value
    if (
        isinstance(value, list)
        and len(value) == 3
        and all(_is_int(item) and item > 0 for item in value)
    ):
        if value[0] != 3:
            raise _Invalid(
                "the first (channel) dimension is {}, the SSD input is 3-channel RGB".format(
                    value[0]
                ),
                "Write [3, height, width], e.g. [3, 300, 300]",
            )
        return list(value)
    raise _Invalid(
        "expected 'auto' or 3 positive integers [channels, height, width], got {!r}".format(
            value),
        "Write 'auto' (the builder reads it from the graph) or e.g. [3, 300, 300]",
    )


def _float_list(value, key, length, example):
    """A non-empty list of positive numbers (of ``length`` items when given)."""
    wanted = "{} positive numbers".format(length) if length else "a list of positive numbers"
    if not isinstance(value, list) or not value or (length and len(value) != length):
        raise _Invalid(
            "expected {}, got {!r}".format(wanted, value),
            "Write e.g. {} or remove the key to use the default".format(example),
        )
    numbers = [_as_float(item, key) for item in value]
    if any(number <= 0 for number in numbers):
        raise _Invalid(
            "expected {}, got {!r}".format(wanted, value),
            "Write e.g. {} or remove the key to use the default".format(example),
        )
    return numbers


def _check_aspect_ratios(value, key):
    if value == AUTO:
        return value
    return _float_list(value, key, None, "[1.0, 2.0, 0.5, 3.0, 0.3333], or 'auto',")


def _check_variance(value, key):
    return _float_list(value, key, 4, DEFAULT_VARIANCE)


def _check_feature_map_shapes(value, key):
    if (
        isinstance(value, list)
        and value
        and all(_is_int(item) and item > 0 for item in value)
    ):
        return list(value)
    raise _Invalid(
        "expected a list of positive integers (one per feature map), got {!r}".format(value),
        "Write e.g. [19, 10, 5, 3, 2, 1] or remove the key to derive it from input_dims",
    )


def _check_top_k(value, key):
    return _as_int(value, key, 1)


ENGINE_PATHS = ("auto", "uff", "onnx")
BOX_DECODERS = ("graph", "plugin")


def _choice(choices, meaning):
    def check(value, key):
        if value not in choices:
            raise _Invalid(
                "{!r} is not one of {}".format(value, ", ".join(choices)),
                "Write one of {} ({}) or remove the key for the default {}".format(
                    ", ".join(choices), meaning, choices[0]),
            )
        return value
    return check


def _check_engine(value, key):
    if not isinstance(value, str) or not SAFE_NAME.match(value) or not value.endswith(".bin"):
        raise _Invalid(
            "{!r} is not a plain file name ending in .bin".format(value),
            "Use letters, digits, '_', '-', '.' only (no '/' and not starting with '.'), "
            "e.g. TRT_ssd_mobilenet_v2_coco.bin",
        )
    return value


def _check_sha256(value, key):
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # An all-digit checksum (or digits + 'e' + digits) is a number to YAML.
        raise _Invalid(
            "YAML read the value as a number ({!r}), not as a checksum".format(value),
            "Quote the checksum: sha256: \"<64 hex characters>\"",
        )
    if not isinstance(value, str) or not SHA256_HEX.match(value):
        raise _Invalid(
            "expected 64 hexadecimal characters, got {!r}".format(value),
            "Write the output of 'sha256sum <graph>' or remove the key",
        )
    return value.lower()


def _check_fetch_limit(value, key):
    """The largest engine (MiB) the controller accepts for this model (overrides
    engine_fetch_max_mib); not an engine property, so not in the build key."""
    return _as_int(value, key, 1)


def _check_path_text(value, key):
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(
            "expected a file path, got {!r}".format(value),
            "Write a path, relative to the catalog file or absolute",
        )
    return value


# ---------------------------------------------------------------- the spec

class _Field(collections.namedtuple("_Field", "check default required")):
    """How to validate one per-model key: check(value, key) -> normalized value."""


FIELDS = collections.OrderedDict(
    [
        ("graph", _Field(_check_path_text, None, True)),
        ("sha256", _Field(_check_sha256, None, False)),
        ("num_classes", _Field(_check_num_classes, "auto", False)),
        ("min_size", _Field(_check_scale, AUTO, False)),
        ("max_size", _Field(_check_scale, AUTO, False)),
        ("input_order", _Field(_check_input_order, "auto", False)),
        ("input_dims", _Field(_check_input_dims, "auto", False)),
        ("aspect_ratios", _Field(_check_aspect_ratios, AUTO, False)),
        ("feature_map_shapes", _Field(_check_feature_map_shapes, None, False)),
        ("variance", _Field(_check_variance, DEFAULT_VARIANCE, False)),
        ("confidence_threshold", _Field(_check_fraction, 1e-8, False)),
        ("nms_threshold", _Field(_check_fraction, 0.6, False)),
        ("top_k", _Field(_check_top_k, 100, False)),
        ("keep_top_k", _Field(_check_top_k, 100, False)),
        ("engine", _Field(_check_engine, None, False)),
        ("pipeline_config", _Field(_check_path_text, None, False)),
        ("engine_path", _Field(_choice(ENGINE_PATHS, "auto: ONNX on TensorRT >= {}, UFF "
                                                     "before".format(ONNX_FROM_TEXT)),
                               "auto", False)),
        ("box_decoder", _Field(_choice(BOX_DECODERS, "ONNX path: decode and clip the boxes "
                                                     "in the graph, or in EfficientNMS_TRT"),
                               "graph", False)),
        ("max_engine_mib", _Field(_check_fetch_limit, None, False)),
    ]
)

# Attributes of a ModelSpec beyond the catalog keys: computed while loading.
DERIVED_ATTRIBUTES = ("name", "pipeline_config_sha256")


class ModelSpec(object):
    """One validated catalog entry. Paths are absolute; defaults are filled in.

    ``pipeline_config_sha256`` is the checksum of ``pipeline_config`` when that file was
    checked while loading (it feeds the build key: the conversion checks the graph against it).
    """

    __slots__ = DERIVED_ATTRIBUTES + tuple(FIELDS)

    def __init__(self, **values):
        missing = [attr for attr in self.__slots__ if attr not in values]
        unknown = sorted(set(values) - set(self.__slots__))
        if missing or unknown:
            raise TypeError("ModelSpec: missing {}, unknown {}".format(missing, unknown))
        for attr in self.__slots__:
            setattr(self, attr, values[attr])

    def as_dict(self):
        """Plain JSON-able dict (lists copied), for manifests and ``check --json``."""
        result = collections.OrderedDict()
        for attr in self.__slots__:
            value = getattr(self, attr)
            result[attr] = list(value) if isinstance(value, list) else value
        return result

    def __eq__(self, other):
        return isinstance(other, ModelSpec) and self.as_dict() == other.as_dict()

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "ModelSpec({})".format(
            ", ".join("{}={!r}".format(k, v) for k, v in self.as_dict().items())
        )


class Catalog(object):
    """A loaded catalog: ``path`` (absolute) and ``models`` (name -> ModelSpec, file order)."""

    def __init__(self, path, models):
        self.path = path
        self.models = models

    def __repr__(self):
        return "Catalog({!r}, models={})".format(self.path, list(self.models))


# ---------------------------------------------------------------- YAML reading

class _YamlDocument(object):
    """Parsed YAML plus the line of every mapping key, and duplicate keys found on the way."""

    def __init__(self, data, key_lines, duplicates):
        self.data = data
        self.key_lines = key_lines  # tuple of keys from the root -> 1-based line
        self.duplicates = duplicates  # list of (key path, earlier line, later line)

    def line(self, *key_path):
        return self.key_lines.get(tuple(key_path))


def _index_keys(node, prefix, key_lines, duplicates):
    """Walk the composed YAML tree and remember where each mapping key is."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            path = prefix + (key_node.value,)
            line = key_node.start_mark.line + 1
            if path in key_lines:
                # YAML keeps the last definition: forget the lines of the earlier one.
                duplicates.append((path, key_lines[path], line))
                for known in [k for k in key_lines if k[:len(path)] == path]:
                    del key_lines[known]
            key_lines[path] = line
            _index_keys(value_node, path, key_lines, duplicates)


def _file_error(shown, message, line=None):
    return CatalogError([Problem(shown, None, None, message, line)])


def _read_yaml(path, shown):
    """Parse ``path``; raise CatalogError for unreadable files and YAML syntax errors."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise _file_error(shown, "file not found (looked for {}). Create it ({}; `make "
                          "sample` makes models/sample.yml usable), or name another catalog: "
                          "`python3 -m builder ... --catalog PATH`, or for ansible-playbook "
                          "engine_catalog in group_vars/all.yml or `-e engine_catalog=PATH`"
                          .format(path, README_HINT)) from None
    except IsADirectoryError:
        raise _file_error(shown, "is a directory, not a catalog file. Pass the path of "
                          "models.yml itself") from None
    except PermissionError:
        raise _file_error(shown, "permission denied while reading it. Make the file "
                          "readable by this user") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _file_error(shown, "is not UTF-8 text (byte {}). Save it as UTF-8".format(
            error.start)) from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        reason = getattr(error, "problem", None) or str(error)
        raise _file_error(shown, "YAML syntax error: {}. Fix the YAML at this line (check "
                          "indentation and ':' after each key)".format(reason),
                          mark.line + 1 if mark is not None else None) from None
    key_lines = {}
    duplicates = []
    if node is not None:
        _index_keys(node, (), key_lines, duplicates)
    return _YamlDocument(data, key_lines, duplicates)


# ---------------------------------------------------------------- validation

class _Collector(object):
    """Gathers problems for one catalog file."""

    def __init__(self, shown, document):
        self.shown = shown
        self.document = document
        self.problems = []

    def add(self, model, key, message, line=None, locate=True):
        """Record a problem; ``locate``: find its line in the file when not given."""
        if line is None and locate:
            if model is not None and key is not None:
                line = self.document.line("models", model, key)
            if line is None and model is not None:
                line = self.document.line("models", model)
            if line is None and model is None and key is not None:
                line = self.document.line(key)
        self.problems.append(Problem(self.shown, model, key, message, line))


def _check_top_level(data, collector):
    """Returns the models mapping, or None when it is unusable."""
    if data is None:
        collector.add(None, None, "the file is empty. Add a 'models:' mapping ({})".format(
            README_HINT))
        return None
    if not isinstance(data, dict):
        collector.add(None, None, "the top level is a {}, not a mapping. Start the file with "
                      "'models:' ({})".format(type(data).__name__, README_HINT))
        return None
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            collector.add(None, str(key), "unknown top-level key.{} Known keys: {}".format(
                did_you_mean(key, TOP_LEVEL_KEYS), ", ".join(TOP_LEVEL_KEYS)))
    if "version" in data and (not _is_int(data["version"]) or data["version"] != CATALOG_VERSION):
        collector.add(None, "version", "unsupported catalog version {!r}. Write 'version: {}' "
                      "(the only version this builder reads)".format(data["version"],
                                                                     CATALOG_VERSION))
    models = data.get("models")
    if "models" not in data:
        collector.add(None, "models", "missing. Add a 'models:' mapping of model name -> "
                      "settings ({})".format(README_HINT))
        return None
    if not isinstance(models, dict) or not models:
        collector.add(None, "models", "expected a non-empty mapping of model name -> settings, "
                      "got {!r}. Add at least one model ({})".format(models, README_HINT))
        return None
    return models


def _check_name(name, collector):
    if not isinstance(name, str):
        collector.add(str(name), None, "model names must be text, got {!r}. Quote the name "
                      "in the YAML".format(name))
        return False
    if not SAFE_NAME.match(name):
        collector.add(name, None, "the name may only contain letters, digits, '_', '-', '.' "
                      "and must not start with '.' or '-' (it becomes a directory name and a "
                      "command-line argument). Rename "
                      "the model")
        return False
    return True


def _resolve(base_dir, value):
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))


class _FileChecker(object):
    """Existence checks and checksums of the files models refer to (each hashed once).
    ``known_sums``: sums known from earlier loads, taken while a file is unchanged and updated
    in place (builder/graphsums.py known_sha256); None: every file is read."""

    def __init__(self, base_dir, known_sums=None):
        self.base_dir = base_dir
        self.known_sums = known_sums
        self._sums = {}

    def sha256(self, path):
        if path not in self._sums:
            self._sums[path] = file_sha256(path) if self.known_sums is None else \
                graphsums.known_sha256(path, self.known_sums)
        return self._sums[path]

    def require_file(self, path, what, raw):
        if os.path.isfile(path):
            return
        relative = "" if os.path.isabs(os.path.expanduser(raw)) else (
            " (relative paths are relative to the catalog's directory {})".format(self.base_dir))
        if os.path.isdir(path):
            raise _Invalid("{} is a directory, not a {}".format(path, what),
                           "Point the key at the file itself")
        raise _Invalid("{} not found (looked for {})".format(what, path),
                       "Put the file there or fix the path{}".format(relative))


def _validate_model(name, entry, collector, files, check_graphs):
    """Return a ModelSpec, or None after recording the problems."""
    if not isinstance(entry, dict):
        collector.add(name, None, "expected a mapping of settings, got {!r}. Indent the "
                      "model's keys under its name ({})".format(entry, README_HINT))
        return None
    before = len(collector.problems)
    for key in entry:
        if key not in FIELDS:
            collector.add(name, str(key), "unknown key.{} Known keys: {}".format(
                did_you_mean(key, FIELDS), ", ".join(FIELDS)))
    values = {}
    for key, field in FIELDS.items():
        if key not in entry or (entry[key] is None and not field.required):
            if field.required:
                collector.add(name, key, "missing (required). Add '{}:' to the model".format(
                    key))
            default = field.default
            values[key] = list(default) if isinstance(default, list) else default
            continue
        try:
            values[key] = field.check(entry[key], key)
        except _Invalid as invalid:
            collector.add(name, key, invalid.message)
            values[key] = None
    _check_cross_fields(name, values, collector)
    if values["engine"] is None:
        values["engine"] = "TRT_{}.bin".format(name)
    values["pipeline_config_sha256"] = None
    _check_files(name, entry, values, collector, files, check_graphs=check_graphs)
    if len(collector.problems) > before:
        return None
    values["name"] = name
    return ModelSpec(**values)


def _check_cross_fields(name, values, collector):
    low, high = values.get("min_size"), values.get("max_size")
    if low not in (None, AUTO) and high not in (None, AUTO) and not low < high:
        collector.add(name, "max_size", "min_size {} must be smaller than max_size {}. Write "
                      "'auto' for both (the builder reads them from the graph's anchors) or "
                      "min_scale/max_scale of the model's pipeline.config ({})".format(
                          low, high, README_HINT))
    top_k, keep = values.get("top_k"), values.get("keep_top_k")
    if top_k is not None and keep is not None and keep > top_k:
        collector.add(name, "keep_top_k", "keep_top_k {} is larger than top_k {}. Make "
                      "keep_top_k <= top_k".format(keep, top_k))


def _check_files(name, entry, values, collector, files, *, check_graphs):
    """Resolve graph / pipeline_config paths; with check_graphs, check they exist and the pin."""
    for key in ("graph", "pipeline_config"):
        if values.get(key) is not None:
            values[key] = _resolve(files.base_dir, values[key])
    if not check_graphs:
        return
    if values.get("graph") is not None:
        try:
            files.require_file(values["graph"], "graph file", entry["graph"])
        except _Invalid as invalid:
            collector.add(name, "graph", invalid.message)
        else:
            pin = values.get("sha256")
            if pin is not None:
                actual = files.sha256(values["graph"])
                if actual != pin:
                    collector.add(name, "sha256", "the graph {} does not match the pin: "
                                  "expected {}, actual {}. Update the pin if the new graph is "
                                  "intended, or restore the original graph".format(
                                      values["graph"], pin, actual))
    if values.get("pipeline_config") is not None:
        try:
            files.require_file(values["pipeline_config"], "pipeline config",
                               entry["pipeline_config"])
        except _Invalid as invalid:
            collector.add(name, "pipeline_config", invalid.message)
        else:
            values["pipeline_config_sha256"] = files.sha256(values["pipeline_config"])


def _selected_names(models, wanted, collector):
    """Names to validate, in catalog order; unknown wanted names are problems."""
    if wanted is None:
        return list(models)
    for name in wanted:
        if name not in models:
            collector.add(name, None, "not in the catalog.{} Models in the catalog: {}".format(
                did_you_mean(name, [str(m) for m in models]),
                ", ".join(str(m) for m in models)), locate=False)
    return [name for name in models if name in wanted]


def _describe_key_path(key_path):
    """(model, key) naming a YAML key path for a Problem."""
    if key_path[0] == "models" and len(key_path) == 2:
        return key_path[1], None
    if key_path[0] == "models" and len(key_path) == 3:
        return key_path[1], key_path[2]
    return None, ".".join(key_path)


def load_catalog(path, models=None, check_graphs=True, known_sums=None):
    """Load and validate the catalog at ``path``.

    ``models``: validate (and return) only these model names; an unknown name is an error.
    ``check_graphs``: also check that graph / pipeline_config files exist and match the
    ``sha256`` pin (hashing reads every graph; the preflight on the controller wants it).
    ``known_sums``: {path: entry} of graphs hashed before (the controller's cache), taken while
    a graph is unchanged and updated with the sums read (builder/graphsums.py).
    Raises CatalogError (a UserError) listing every problem found.
    """
    shown = os.path.normpath(path)
    absolute = os.path.abspath(path)
    document = _read_yaml(absolute, shown)
    collector = _Collector(shown, document)
    for key_path, earlier, later in document.duplicates:
        model, key = _describe_key_path(key_path)
        collector.add(model, key, "defined more than once (the definition at line {} would be "
                      "silently replaced by this one). Keep one".format(earlier), line=later)
    entries = _check_top_level(document.data, collector)
    specs = collections.OrderedDict()
    if entries is not None:
        files = _FileChecker(os.path.dirname(absolute), known_sums)
        for name in _selected_names(entries, models, collector):
            if not _check_name(name, collector):
                continue
            spec = _validate_model(name, entries[name], collector, files, check_graphs)
            if spec is not None:
                specs[name] = spec
    if collector.problems:
        raise CatalogError(collector.problems)
    return Catalog(absolute, specs)
