"""format_table: processes as ``drunc-pm ps`` prints them."""

import shlex
import unicodedata
from typing import Iterable, List, Sequence

from . import pb

HEADER = ["session", "friendly name", "user", "host", "uuid", "alive", "exit-code"]
LONG_HEADER = ["directory", "log", "command"]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text)


def command_line(description: "pb.ProcessDescription") -> str:
    """The commands of a process, shell-quoted, joined with " ; "."""
    return " ; ".join(" ".join(shlex.quote(word) for word in [command.exec, *command.args])
                      for command in description.executable_and_arguments)


def rows(instances: Iterable["pb.ProcessInstance"], long_format: bool = False) -> List[List[str]]:
    """The table's rows (header first), as strings."""
    result = [HEADER + (LONG_HEADER if long_format else [])]
    for instance in instances:
        description = instance.process_description
        metadata = description.metadata
        alive = instance.status_code == pb.RUNNING
        row = [metadata.session, metadata.name, metadata.user, metadata.hostname, instance.uuid.uuid,
               "True" if alive else "False", "" if alive else str(instance.return_code)]
        if long_format:
            row += [description.process_execution_directory, description.process_logs_path, command_line(description)]
        result.append(row)
    return result


def format_rows(table: Sequence[Sequence[str]]) -> str:
    """Aligned columns, two spaces apart, a rule of dashes under the header."""
    widths = [max(_width(row[c]) for row in table) for c in range(len(table[0]))]

    def line(row: Sequence[str]) -> str:
        cells = [cell + " " * (widths[c] - _width(cell) + 2) if c + 1 < len(row) else cell
                 for c, cell in enumerate(row)]
        return "".join(cells)

    return "\n".join([line(table[0]), line(["-" * w for w in widths])] + [line(row) for row in table[1:]]) + "\n"


def format_table(instances: Iterable["pb.ProcessInstance"], long_format: bool = False) -> str:
    """The text ``drunc-pm ps [--long-format]`` prints for these processes."""
    return format_rows(rows(instances, long_format))
