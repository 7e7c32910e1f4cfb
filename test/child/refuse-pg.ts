import { register } from 'node:module';

const hook = `
export async function resolve(specifier, context, next) {
  if (specifier === 'pg' || specifier.startsWith('pg/')) {
    const error = new Error("Cannot find package 'pg' imported from " + context.parentURL);
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return next(specifier, context);
}`;

/**
 * From here on, every import of `pg` in this process fails as if the package
 * were not installed (a module resolve hook refuses it); import what should
 * not find it afterwards, dynamically.
 */
export function refusePg(): void {
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
}
