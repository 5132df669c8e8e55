/**
 * RAM and disk go into memory images as regions: a snapshot of a machine that changed a few
 * pages since the last one stores only the regions holding them. Measured on an idle 1 GiB
 * guest two seconds apart (85 MB of non-zero RAM): 4 MiB regions left 56 MB to store again,
 * 1 MiB 35 MB, 256 KiB 21 MB, 64 KiB 12 MB at four times the parts. A disk changes in few,
 * local places, so its regions are larger (fewer parts for a mostly empty 4 GiB disk).
 */
export const REGION_BYTES = { ram: 256 * 1024, disk: 4 * 1024 * 1024 } as const;

/** Part name of a region of a machine file: `ram/00012`, `disk/00000`. */
export function regionName(file: 'ram' | 'disk', index: number): string {
  return `${file}/${String(index).padStart(5, '0')}`;
}
