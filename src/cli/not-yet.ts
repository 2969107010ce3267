/** Shared exit for commands whose work lands with a later piece of the project. */
export function notYet(command: string, what: string): never {
  process.stderr.write(`${command}: ${what} is not implemented yet in this version of m2bridge.\n` + `See README.md ("Status") for what works today.\n`);
  process.exit(1);
}
