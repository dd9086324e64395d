/** Each room (folder) of the house and the rooms it must never import (eslint.config.js). */
export declare const rooms: Readonly<Record<string, readonly string[]>>;
