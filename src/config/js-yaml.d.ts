// The part of js-yaml 4 certkeeper uses (the package ships no types of its own).
declare module 'js-yaml' {
  export interface Schema {
    readonly __schema: unique symbol;
  }
  export const CORE_SCHEMA: Schema;
  export function load(text: string, opts?: { schema?: Schema; filename?: string; json?: boolean }): unknown;
}
