/** Rules for names that become files or object keys, shared by the path-based backends and the folder choice. */

/** Names Windows reserves for devices, whatever the extension: never a file or folder name of ours. */
export const DEVICE_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;
