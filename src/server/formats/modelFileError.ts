/** The error every reader and job throws for a file it cannot use. */
/** A model file (or one of its data files) that cannot be read, with the reason. */
export class ModelFileError extends Error {
  constructor(
    /** The file at fault, as an absolute path. */
    readonly file: string,
    /** What is wrong, in words a user understands. */
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'ModelFileError';
  }
}
