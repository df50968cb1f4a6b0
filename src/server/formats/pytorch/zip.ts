/**
 * The records of a zip archive (yauzl reads the central directory, zip64 included), each
 * with where its bytes start in the file. torch.save stores every record uncompressed,
 * so a storage is one file range; deflated records (archives re-zipped by other tools)
 * are inflated when read.
 */
import { inflateRawSync } from 'node:zlib';
import * as yauzl from 'yauzl';
import { MAX_PYTORCH_ZIP_ENTRIES } from '../../../shared/limits';
import { readExactlySync } from '../fileRange';
import { ModelFileError } from '../modelFileError';

export interface ZipRecord {
  readonly name: string;
  /** Offset of the record's (stored or deflated) bytes in the archive. */
  readonly dataStart: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly deflated: boolean;
}

const STORED = 0;
const DEFLATED = 8;

/** Every record of the zip archive at `file`, by name. */
export async function readZipRecords(file: string): Promise<Map<string, ZipRecord>> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, {
      autoClose: false,
      lazyEntries: true,
      strictFileNames: false,
    });
  } catch (error) {
    throw new ModelFileError(file, `not a readable zip archive (${(error as Error).message})`);
  }
  try {
    if (zip.entryCount > MAX_PYTORCH_ZIP_ENTRIES) {
      throw new ModelFileError(
        file,
        `the zip archive lists ${zip.entryCount} records, more than the limit of ${MAX_PYTORCH_ZIP_ENTRIES}`,
      );
    }
    const entries = await new Promise<yauzl.Entry[]>((resolve, reject) => {
      const list: yauzl.Entry[] = [];
      zip.on('entry', (entry: yauzl.Entry) => {
        list.push(entry);
        zip.readEntry();
      });
      zip.on('end', () => resolve(list));
      zip.on('error', reject);
      zip.readEntry();
    });
    const records = new Map<string, ZipRecord>();
    for (const entry of entries) {
      if (entry.fileName.endsWith('/')) continue;
      if (entry.isEncrypted()) {
        throw new ModelFileError(file, `zip record ${entry.fileName} is encrypted`);
      }
      if (entry.compressionMethod !== STORED && entry.compressionMethod !== DEFLATED) {
        throw new ModelFileError(
          file,
          `zip record ${entry.fileName} uses compression method ${entry.compressionMethod}; only stored and deflated records are read`,
        );
      }
      const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
      records.set(entry.fileName, {
        name: entry.fileName,
        dataStart: fileDataStart,
        compressedSize: entry.compressedSize,
        size: entry.uncompressedSize,
        deflated: entry.compressionMethod === DEFLATED,
      });
    }
    return records;
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(file, `not a readable zip archive (${(error as Error).message})`);
  } finally {
    zip.close();
  }
}

/** Where bytes of a record are in the file, and how to take them out of what is read there. */
export interface RecordSource {
  readonly offset: number;
  readonly length: number;
  extract(raw: Uint8Array): Uint8Array;
}

/**
 * Bytes [start, start + length) of a record's contents: a stored record's are the file
 * range itself; a deflated record is read whole and inflated.
 */
export function recordSource(
  file: string,
  record: ZipRecord,
  start: number,
  length: number,
): RecordSource {
  if (start < 0 || start + length > record.size) {
    throw new ModelFileError(
      file,
      `bytes ${start}…${start + length} lie outside zip record ${record.name}`,
    );
  }
  if (!record.deflated) {
    return { offset: record.dataStart + start, length, extract: (raw) => raw };
  }
  return {
    offset: record.dataStart,
    length: record.compressedSize,
    extract: (raw) => {
      let whole: Buffer;
      try {
        whole = inflateRawSync(raw, { maxOutputLength: Math.max(1, record.size) });
      } catch (error) {
        throw new ModelFileError(
          file,
          `zip record ${record.name} does not inflate (${(error as Error).message})`,
        );
      }
      if (whole.byteLength !== record.size) {
        throw new ModelFileError(
          file,
          `zip record ${record.name} inflates to ${whole.byteLength} bytes, not ${record.size}`,
        );
      }
      return new Uint8Array(whole.buffer, whole.byteOffset + start, length);
    },
  };
}

/** Bytes [start, start + length) of a record's contents, read synchronously from `fd`. */
export function readRecordSync(
  fd: number,
  file: string,
  record: ZipRecord,
  start: number,
  length: number,
): Uint8Array {
  const source = recordSource(file, record, start, length);
  return source.extract(readExactlySync(fd, file, source.offset, source.length));
}
