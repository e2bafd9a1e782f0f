import { appendHistory } from '../files/history.js';
import type { HistoryRecord } from '../report/record.js';
import { CompletedUnrecordedError, errorMessage } from '../shared/errors.js';
import type { Output } from '../shared/output.js';

/** After the commit the record must not be lost: if the file cannot take it, it is printed instead (exit 4). */
export async function recordCommitted(
  file: string,
  record: HistoryRecord,
  what: string,
  output: Output,
): Promise<void> {
  try {
    await appendHistory(file, record);
  } catch (error) {
    output.error(JSON.stringify(record, null, 2));
    throw new CompletedUnrecordedError(
      `The ${what} COMPLETED, but its record could not be appended to ${file} (${errorMessage(error)}); save the record printed above`,
      { cause: error },
    );
  }
}
