/** Plain-text tables for the CLI: columns padded to their widest cell, two spaces apart. */
export function printTable(rows: readonly (readonly string[])[]): void {
  if (rows.length === 0) return;
  // A loop, not Math.max(...rows): spreading a million rows overflows the call stack.
  const widths = rows[0]!.map(() => 0);
  for (const row of rows) {
    row.forEach((cell, column) => {
      widths[column] = Math.max(widths[column] ?? 0, cell.length);
    });
  }
  for (const row of rows) {
    console.log(
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    );
  }
}
