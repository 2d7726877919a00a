"""The interface of a Python file — imports, classes, signatures, first docstring lines —
so a prompt can carry what other files offer without carrying their whole bodies."""

from __future__ import annotations

import ast


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _doc(node: ast.AST, indent: str) -> list[str]:
    doc = ast.get_docstring(node)  # type: ignore[arg-type]
    return [f'{indent}"""{doc.strip().splitlines()[0]}"""'] if doc else []


def python_interface(source: str) -> str:
    """Signatures of ``source``'s public classes and functions; the source itself when it
    does not parse (the reader then sees what is wrong)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            lines += [_signature(node) + ": ...", *_doc(node, "    ")]
        elif isinstance(node, ast.ClassDef):
            bases = f"({', '.join(ast.unparse(b) for b in node.bases)})" if node.bases else ""
            lines += [f"class {node.name}{bases}:", *_doc(node, "    ")]
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    lines.append(f"    {ast.unparse(item)}")
                elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    not item.name.startswith("_") or item.name == "__init__"
                ):
                    decorators = [f"    @{ast.unparse(d)}" for d in item.decorator_list]
                    lines += [*decorators, "    " + _signature(item) + ": ..."]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            text = ast.unparse(node)
            if text[:1].isupper() and len(text) < 120:  # module constants
                lines.append(text)
    return "\n".join(lines)
