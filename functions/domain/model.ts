/** The record model storage works with: the merge rules and renderers, bound to TIMEZONE. */
import type { RecordModel } from '../storage/backend.ts';
import { isFinal, mergeStates, sameState } from './merge.ts';
import { chooseFolder, renderDocuments, summarize } from './render.ts';

export function recordModel(timezone: string): RecordModel {
  return {
    merge: mergeStates,
    same: sameState,
    chooseFolder: (state) => chooseFolder(state, timezone),
    render: (state, folder, kinds) => renderDocuments(state, folder, kinds, timezone),
    isFinal,
    summarize,
  };
}
